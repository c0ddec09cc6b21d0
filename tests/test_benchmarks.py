"""The benchmark scripts run end to end (tiny batches: these check that they work, not speed)."""
import importlib.util
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_levers_prints_every_variant(capsys):
    levers = load("levers")
    levers.main(["--models", "cnn-tiny", "vit-cifar-nano", "--rounds", "1", "--steps", "1",
                 "--batch-size", "2", "--threads", "2"])
    out = capsys.readouterr().out
    for label in ["all on", "plain im2col", "plain max_pool", "plain group_norm",
                  "all plain ops", "no malloc tuning", "no Winograd", "no BLAS accumulation",
                  "no chunks",
                  "no shards", "1 BLAS thread", "plain layer_norm",
                  "plain softmax", "plain gelu", "plain cross_entropy", "plain first_token",
                  "einsum dense layers"]:
        assert label in out, label


def test_every_lever_has_a_plain_twin():
    from tinyvit import cnn, fast, ops
    levers = load("levers")
    try:
        fast.enable()
        levers.switch_off(levers.VIT_LEVERS + levers.CNN_LEVERS)
        assert ops.gelu is fast.TWINS["gelu"][1] and cnn.im2col is fast.TWINS["im2col"][1]
    finally:
        fast.disable()


def test_the_blas_accumulation_lever_sends_matmul_into_the_numpy_way(monkeypatch):
    from tinyvit.fast import blas
    monkeypatch.setattr(blas, "_gemm", blas._gemm)  # restored after the test
    load("levers").switch_off(["numpy products"])
    assert blas._gemm(__import__("numpy").dtype("float32")) is None


def test_the_winograd_lever_leaves_the_convolution_the_taps_and_im2col(monkeypatch):
    from tinyvit.fast import conv
    monkeypatch.setattr(conv, "ROUTES", conv.ROUTES)  # restored after the test
    wide = (2, 16, 16, 64), (3, 3, 64, 128)
    assert "winograd" in conv.routes_for(wide[1])  # what a machine's table may pick
    load("levers").switch_off(["winograd"])
    assert conv.routes_for((3, 3, 64, 64)) == ("taps", "im2col")
    assert conv.default_route("forward", *wide) == "im2col"


def test_step_benchmark_runs(capsys):
    pytest.importorskip("torch")
    step = load("step")
    step.main(["--models", "vit-cifar-nano", "cnn-tiny", "--batch-size", "2", "--repeats", "1",
               "--rounds", "1"])
    out = capsys.readouterr().out
    assert "vit-cifar-nano" in out and "cnn-tiny" in out


def test_profile_accounts_for_the_step(capsys):
    from tinyvit import fast
    profile = load("profile_step")
    for by in ("op", "layer"):
        try:
            profile.main(["--model", "cnn-tiny", "--batch-size", "2", "--steps", "1", "--by", by])
        finally:
            fast.disable()  # the script turns the fast twins on for its process
        out = capsys.readouterr().out
        assert "convolve" in out and "forward + backward" in out and "clip + AdamW" in out
    with fast.twins():
        rows, parts = profile.profile("vit-cifar-nano", 2, 1, "op")
    recorded = sum(f + b for f, b, _ in rows.values())
    assert 0.3 * parts["forward + backward"] < recorded <= parts["forward + backward"]
    assert rows["layer_norm"][2] == 2 * 4 + 1  # two per block, 4 blocks, the final norm


def test_sweep_cost_prints_a_plan(capsys, monkeypatch):
    import sys

    cost = load("sweep_cost")
    monkeypatch.setattr(sys, "argv", ["sweep_cost.py", "--models", "cnn-tiny", "--sizes", "100",
                                      "--seconds", "0.01", "--seeds", "2"])
    cost.main()
    out = capsys.readouterr().out
    assert "at least 100,000 images and 10 epochs per run" in out
    assert "over sizes [100]: 20,000" in out  # 200 epochs (the most) of 100 images
    assert "cnn-tiny" in out and "CPU-hours for 2 seeds" in out


def test_conv_dispatch_records_each_convolution_and_times_both_routes(capsys):
    from tinyvit import cnn, fast
    from tinyvit.configs import get_cnn_config
    from tinyvit.fast import conv as fast_conv
    from tinyvit.run import train
    dispatch = load("conv_dispatch")
    prim = fast_conv.convolve
    try:
        convs = dispatch.record_convolutions("cnn-tiny", 2)
    finally:
        fast.disable()  # the stepper turns the fast twins on
    assert fast_conv.convolve is prim  # the recorder is gone
    expected = [tuple(s) for s in cnn.conv_shapes(get_cnn_config("cnn-tiny"))]  # (Cin, Cout, side)
    shards = len(fast.shards.bounds(2, train.SHARDS))  # each runs every layer on its rows
    assert len(convs) == shards * len(expected)
    assert list(dict.fromkeys((x[3], w[3], x[1]) for x, w, _ in convs)) == expected
    assert all(x[0] == 2 // shards and w[:2] == (3, 3) for x, w, _ in convs)
    stem = (3, 16, 32)  # the first layer: no gradient for the images
    assert all(a == (1,) if (x[3], w[3], x[1]) == stem else sorted(a) == [0, 1]
               for x, w, a in convs)
    rule = fast_conv.TAPS_MIN_PIXELS, fast_conv.TAPS_MAX_OUT
    try:
        dispatch.main(["--models", "cnn-tiny", "--batch", "2", "--rounds", "1", "--repeats", "1"])
    finally:
        fast.disable()
    assert (fast_conv.TAPS_MIN_PIXELS, fast_conv.TAPS_MAX_OUT) == rule  # the rule is put back
    out = capsys.readouterr().out
    assert "im2col/taps" in out and "cnn-tiny" in out and "rule/best" in out


def test_conv_layers_times_the_shapes_and_parts_a_training_step_runs(capsys, monkeypatch):
    from tinyvit import fast
    from tinyvit.fast import shards

    layers = load("conv_layers")
    dispatch = load("conv_dispatch")
    try:
        step = dispatch.record_convolutions("cnn-air-small", 4)  # what training really runs
    finally:
        fast.disable()  # the stepper turns the fast twins on
    shapes = layers.layer_shapes(["cnn-air-small"], 4)
    threads = len(shards.bounds(4, fast.SHARDS))
    ran = {}
    for x, w, argnums in step:
        parts = ran.setdefault((4, *x[1:], w[3]), set())
        parts.update(dispatch.parts_of(argnums))
    assert {s: set(e["parts"]) for s, e in shapes.items()} == ran
    assert sum(e["uses"]["cnn-air-small"] for e in shapes.values()) == len(step) // threads
    products = layers.blas_products("forward", "taps", (2, 8, 8, 16), (3, 3, 16, 32))
    assert list(products.values()) == [9] and next(iter(products))[1:] == (16, 32)  # K = C
    assert layers.blas_products("kernel", "im2col", (2, 8, 8, 16), (3, 3, 16, 32)) == {
        (144, 128, 32): 1}
    wino = layers.blas_products("input", "winograd", (2, 8, 8, 16), (3, 3, 16, 32))
    assert wino[2 * 4 * 5, 32, 16] == 16  # one chunk: 16 products, M = T' = B th (tw+1), K = O
    every = layers.layer_shapes  # the table end to end on two shapes (a process each)
    monkeypatch.setattr(layers, "layer_shapes", lambda *a: dict(list(every(*a).items())[1:3]))
    monkeypatch.setattr(layers, "peak_at", lambda threads: 100.0)  # its own test: step.py's
    layers.main(["--models", "cnn-tiny", "--batch-size", "4", "--rounds", "1", "--repeats",
                 "1", "--threads", "2"])
    out = capsys.readouterr().out
    assert "per model" in out and "cnn-tiny" in out
    assert len(re.findall(r"(taps: 9 x|im2col: 1 x|winograd: \d+ x)", out)) == 2 * 3  # parts


def test_stats_cost_times_the_pass_both_ways(capsys):
    stats_cost = load("stats_cost")
    stats_cost.main(["--model", "cnn-air-small", "--images", "40", "--steps", "1"])
    out = capsys.readouterr().out
    assert "epoch (1 steps of 40)" in out and "one after another" in out and "one per core" in out
    with pytest.raises(SystemExit, match="no BatchNorm"):
        stats_cost.main(["--model", "cnn-tiny", "--images", "40", "--steps", "1"])
