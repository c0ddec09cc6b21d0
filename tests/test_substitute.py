"""One mechanism substitutes an operation (tinyvit.support.substitute): the fast twins, a
student's function and the device's autograd switches are all layers of it. Layers compose in
either order, close in any order, and hold under threads."""
import threading
import types

import numpy as np

from tinyvit import fast, ops
from tinyvit.exercises.patching import swapped
from tinyvit.fast import ops as fast_ops
from tinyvit.support.substitute import Layer, substituted


def student_softmax(x, axis=-1):
    return np.exp(x) / np.exp(x).sum(axis, keepdims=True)


def test_a_students_softmax_inside_the_fast_twins_runs_and_the_twins_come_back():
    formula = ops.softmax
    with fast.twins():
        assert ops.softmax is fast_ops.softmax and ops.gelu is fast_ops.gelu
        with swapped([(ops, "softmax", student_softmax)]):
            assert ops.softmax is student_softmax and ops.gelu is fast_ops.gelu
        assert ops.softmax is fast_ops.softmax
    assert ops.softmax is formula and fast.enabled() == []


def test_the_fast_twins_switched_on_inside_a_students_function_leave_it_in_place():
    formula = ops.softmax
    with swapped([(ops, "softmax", student_softmax)]):
        with fast.twins():
            assert ops.softmax is student_softmax and ops.gelu is fast_ops.gelu
            with fast.formulas():  # takes back twins only
                assert ops.softmax is student_softmax and ops.gelu is not fast_ops.gelu
        assert ops.softmax is student_softmax and ops.gelu is not fast_ops.gelu
    assert ops.softmax is formula


def test_layers_closed_out_of_order_leave_what_the_open_ones_say():
    m = types.SimpleNamespace(f="original")
    a, b = Layer([(m, "f", "a")]), Layer([(m, "f", "b")])
    assert m.f == "b"
    a.remove()
    assert m.f == "b"  # b still open: its value, not a's "before"
    b.remove()
    assert m.f == "original"
    held = Layer([(m, "new", 1)])  # an attribute that did not exist
    assert m.new == 1
    held.remove()
    assert not hasattr(m, "new")


def test_dict_entries_are_substituted_like_attributes():
    table = {"k": 1}
    with substituted([(table, "k", 2), (table, "extra", 3)]):
        assert table == {"k": 2, "extra": 3}
    assert table == {"k": 1}


def test_threads_opening_and_closing_layers_leave_every_attribute_as_it_was():
    m = types.SimpleNamespace(**{f"f{i}": i for i in range(4)})
    errors = []

    def worker(i):
        try:
            for _ in range(300):
                with substituted([(m, f"f{i}", -i), (m, "f0", "shared")]):
                    assert getattr(m, f"f{i}") in (-i, "shared")
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and vars(m) == {f"f{i}": i for i in range(4)}


def test_enable_and_disable_are_a_setting_under_the_scoped_switches():
    try:
        fast.enable(["gelu"])
        with swapped([(ops, "gelu", student_softmax)]):
            assert ops.gelu is student_softmax  # opened after the setting: on top of it
        assert fast.enabled() == ["gelu"]
    finally:
        fast.disable()
    assert fast.enabled() == []
