"""Checkpoints: tinyvit .npz round trips, atomic writes, one-line errors, Google's ViT layout."""
import os

import numpy as np
import pytest

from tinyvit.run import checkpoint as ck
from tinyvit.run import google
from tinyvit.configs import ViTConfig
from tinyvit.optim import init_adam
from tinyvit.tree import count_params, flatten, tree_map, unflatten
from tinyvit.vit import init_vit

TINY = ViTConfig(name="tiny", image_size=8, patch_size=4, channels=2, width=6, depth=2,
                 heads=2, mlp_dim=5, num_classes=3)
TINY_GAP = ViTConfig(name="tiny-gap", image_size=8, patch_size=4, channels=2, width=6, depth=2,
                     heads=2, mlp_dim=5, num_classes=3, pool="gap")


def random_params(cfg=TINY, seed=0):
    """init_vit, then every entry moved off its init so a mix-up cannot go unseen."""
    rng = np.random.default_rng(seed)
    return tree_map(lambda x: (x + rng.standard_normal(x.shape)).astype(x.dtype),
                    init_vit(rng, cfg))


def assert_same_tree(a, b):
    fa, fb = flatten(a), flatten(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        assert fa[k].dtype == fb[k].dtype, k
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def one_line_error(fn, *args, match=None, **kwargs):
    """Call fn, expect a ValueError with a one-line message (containing `match`)."""
    with pytest.raises(ValueError) as e:
        fn(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg, msg
    if match is not None:
        assert match in msg, msg
    return msg


# ---------------------------------------------------------------- tree helpers


def test_flatten_unflatten_round_trip():
    params = random_params()
    flat = flatten(params)
    assert "blocks/1/attn/qkv/w" in flat and "cls" in flat
    assert_same_tree(unflatten(flat), params)
    assert isinstance(unflatten(flat)["blocks"], list)
    assert count_params(params) == sum(x.size for x in flat.values())


# ---------------------------------------------------------------- tinyvit checkpoints


def test_save_load_round_trip_with_extras(tmp_path):
    params = random_params()
    opt = init_adam(params)
    opt["step"] = 7
    path = tmp_path / "ckpt.npz"
    ck.save_params(path, params, step=12, opt=opt, note="hello")
    assert_same_tree(ck.load_params(path), params)
    assert_same_tree(ck.load_params(path, like=init_vit(np.random.default_rng(1), TINY)), params)
    extra = ck.load_extra(path)
    assert extra["step"] == 12 and extra["note"] == "hello" and extra["opt"]["step"] == 7
    assert_same_tree(extra["opt"]["m"], opt["m"])


def test_load_with_template_casts_to_its_dtype(tmp_path):
    ck.save_params(tmp_path / "c.npz", random_params())
    like = tree_map(lambda x: x.astype(np.float64), init_vit(np.random.default_rng(1), TINY))
    loaded = ck.load_params(tmp_path / "c.npz", like=like)
    assert all(x.dtype == np.float64 for x in flatten(loaded).values())


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "ckpt.npz"
    ck.save_params(path, random_params(seed=0))
    ck.save_params(path, random_params(seed=1))  # overwrite
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert_same_tree(ck.load_params(path), random_params(seed=1))


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "ckpt.npz"
    ck.save_params(path, random_params(seed=0))
    bad = random_params(seed=1)
    bad["head"]["b"] = np.array([object()])  # cannot be saved without pickle
    one_line_error(ck.save_params, path, bad, match="object")
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert_same_tree(ck.load_params(path), random_params(seed=0))


def test_template_errors_name_the_key(tmp_path):
    like = init_vit(np.random.default_rng(0), TINY)
    path = tmp_path / "c.npz"

    missing = random_params()
    del missing["blocks"][1]["ln2"]
    ck.save_params(path, missing)
    msg = one_line_error(ck.load_params, path, like=like, match="blocks/1/ln2/g")
    assert "missing 2 key(s)" in msg

    extra = random_params()
    extra["blocks"][0]["attn"]["rel"] = np.zeros(3, np.float32)
    ck.save_params(path, extra)
    one_line_error(ck.load_params, path, like=like, match="unexpected key(s): blocks/0/attn/rel")

    wrong = random_params()
    wrong["blocks"][0]["attn"]["qkv"]["w"] = np.zeros((6, 9), np.float32)
    ck.save_params(path, wrong)
    one_line_error(ck.load_params, path, like=like,
                   match="blocks/0/attn/qkv/w: expected (6, 18), found (6, 9)")


@pytest.mark.parametrize("content", [b"not a zip file at all", b"PK\x03\x04truncated"])
def test_corrupt_file_is_a_one_line_error_naming_it(tmp_path, content):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    one_line_error(ck.load_params, path, match="broken.npz")
    one_line_error(google.load_google_vit, path, TINY, match="broken.npz")


def test_truncated_npz_and_npy_file(tmp_path):
    good = tmp_path / "good.npz"
    ck.save_params(good, random_params())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    one_line_error(ck.load_params, cut, match="cut.npz")
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    one_line_error(ck.load_params, npy, match="single.npz")


# ---------------------------------------------------------------- Google's layout


@pytest.mark.parametrize("cfg", [TINY, TINY_GAP], ids=["cls", "gap"])
@pytest.mark.parametrize("prefix", ["", "opt/target/"], ids=["plain", "opt-target"])
def test_google_round_trip(tmp_path, cfg, prefix):
    params = random_params(cfg)
    path = tmp_path / "google.npz"
    google.save_google_vit(path, params, cfg, prefix=prefix)
    with np.load(path) as f:
        names = set(f.files)
    assert {prefix + k for k in google.google_shapes(cfg)} == names
    assert (prefix + "cls" in names) == (cfg.pool == "cls")
    assert_same_tree(google.load_google_vit(path, cfg), params)
    assert google.infer_config_from_google(path, name=cfg.name) == cfg


def test_google_arrays_have_the_official_shapes():
    arrays = google.to_google(random_params(), TINY)
    assert {k: x.shape for k, x in arrays.items()} == google.google_shapes(TINY)
    blk = "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/"
    assert arrays[blk + "query/kernel"].shape == (6, 2, 3)  # (D, H, hd)
    assert arrays[blk + "out/kernel"].shape == (2, 3, 6)  # (H, hd, D)
    assert arrays["embedding/kernel"].shape == (4, 4, 2, 6)  # (P, P, C, D)


def test_google_query_key_value_go_to_the_right_columns():
    params = random_params()
    arrays = google.to_google(params, TINY)
    qkv = params["blocks"][1]["attn"]["qkv"]
    mha = "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/"
    # key head 1, entry j -> fused column D + 1*hd + j
    np.testing.assert_array_equal(arrays[mha + "key/kernel"][:, 1, 2], qkv["w"][:, 6 + 3 + 2])
    np.testing.assert_array_equal(arrays[mha + "value/bias"][0, 1], qkv["b"][12 + 1])


def write_google(path, arrays):
    """Save raw Google-named arrays (for broken files)."""
    np.savez(path, **arrays)


def test_google_errors(tmp_path):
    path = tmp_path / "g.npz"
    good = google.to_google(random_params(), TINY)

    write_google(path, {**good, "pre_logits/kernel": np.zeros((6, 6)),
                        "pre_logits/bias": np.zeros(6)})
    one_line_error(google.load_google_vit, path, TINY, match="pre_logits")

    big = ViTConfig(image_size=16, patch_size=4, channels=2, width=6, depth=2, heads=2,
                    mlp_dim=5, num_classes=3)
    msg = one_line_error(google.load_google_vit, _saved(tmp_path, big), TINY, match="4x4 patch grid")
    assert "2x2" in msg and "interpolat" in msg

    wide = ViTConfig(image_size=8, patch_size=4, channels=2, width=8, depth=2, heads=2,
                     mlp_dim=5, num_classes=3)
    one_line_error(google.load_google_vit, _saved(tmp_path, wide), TINY,
                   match="embedding/kernel: expected (4, 4, 2, 6), found (4, 4, 2, 8)")

    classes = ViTConfig(image_size=8, patch_size=4, channels=2, width=6, depth=2, heads=2,
                        mlp_dim=5, num_classes=7)
    one_line_error(google.load_google_vit, _saved(tmp_path, classes), TINY,
                   match="head/kernel: expected (6, 3), found (6, 7)")

    deep = ViTConfig(image_size=8, patch_size=4, channels=2, width=6, depth=3, heads=2,
                     mlp_dim=5, num_classes=3)
    one_line_error(google.load_google_vit, _saved(tmp_path, deep), TINY,
                   match="3 encoder blocks (encoderblock_0..encoderblock_2), the config depth 2")
    one_line_error(google.load_google_vit, _saved(tmp_path, TINY), deep,
                   match="2 encoder blocks (encoderblock_0..encoderblock_1), the config depth 3")

    extra = {**good, "Transformer/encoderblock_0/rel_pos": np.zeros(3)}
    write_google(path, extra)
    one_line_error(google.load_google_vit, path, TINY, match="unexpected array(s): Transformer/encod")

    one_line_error(google.load_google_vit, _saved(tmp_path, TINY_GAP), TINY, match="'cls'")
    one_line_error(google.load_google_vit, _saved(tmp_path, TINY), TINY_GAP, match="'cls'")

    bad_key = dict(good)
    bad_key.pop("Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias")
    write_google(path, bad_key)
    one_line_error(google.load_google_vit, path, TINY,
                   match="Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias")

    ck.save_params(path, random_params())  # a tinyvit file is not a Google file
    one_line_error(google.load_google_vit, path, TINY, match="embedding/kernel")


def _saved(tmp_path, cfg):
    """A Google-format file of random params for `cfg`."""
    path = tmp_path / f"{cfg.image_size}-{cfg.width}-{cfg.depth}-{cfg.num_classes}-{cfg.pool}.npz"
    google.save_google_vit(path, random_params(cfg), cfg)
    return path


def test_the_default_checkpoint_passes_over_an_unfinished_run(tmp_path, monkeypatch, capsys):
    """A run stopped after epoch 1 of 18 does not silently replace the shipped model for eval,
    predict and the lessons: it is named and passed over; once finished, it is used."""
    import json

    from tinyvit.run import cli, rundir

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "vit-cifar-nano"
    run.mkdir(parents=True)
    params = random_params()
    meta = {"model": {"name": "vit-cifar-nano"}, "hparams": {"epochs": 18}}
    history = [{"epoch": 1, "test_acc": 0.331}]
    ck.save_state(run / "last.npz", params, init_adam(params), np.random.default_rng(0), 1,
                  meta, history)
    assert cli.checkpoint_or_default(None) == cli.PRETRAINED
    said = capsys.readouterr().err.splitlines()
    assert said[0].startswith("not using runs/vit-cifar-nano/last.npz: its run is unfinished "
                              "(vit-cifar-nano, epoch 1 of 18, test 33.1%)")
    assert said[1] == (f"using {cli.PRETRAINED} (vit-cifar-nano, 18 epochs, test 67.8%; name a "
                       f"checkpoint to use another)")
    assert cli.checkpoint_or_default("mine.npz") == "mine.npz"  # named: used as it is
    history += [{"epoch": e, "test_acc": 0.6} for e in range(2, 19)]
    ck.save_state(run / "last.npz", params, init_adam(params), np.random.default_rng(0), 18,
                  meta, history)
    assert cli.checkpoint_or_default(None) == run.relative_to(tmp_path) / "last.npz"
    assert "(vit-cifar-nano, epoch 18 of 18, test 60.0%;" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no finished checkpoint found"):
        rundir.default_checkpoint([tmp_path / "none.npz"], say=print)
    assert json.loads(ck.load_extra(run / "last.npz")["history"])[-1]["epoch"] == 18
