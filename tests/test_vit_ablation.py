"""benchmarks/vit_ablation.py: its smoke budget runs every variant and writes the JSON table."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import vit_ablation  # noqa: E402


def test_the_designs_switch_each_ingredient_on_and_off():
    add = dict(vit_ablation.variants("add", ["spt", "mix"]))
    assert add == {"baseline": set(), "+spt": {"spt"}, "+mix": {"mix"}, "all": {"spt", "mix"}}
    drop = dict(vit_ablation.variants("drop", ["spt", "mix"]))
    assert drop == {"all": {"spt", "mix"}, "-spt": {"mix"}, "-mix": {"spt"}}


def test_a_smoke_ablation_trains_every_variant_and_writes_json(tmp_path):
    out = tmp_path / "ablation.json"
    vit_ablation.main(["--smoke", "--design", "drop", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["all", "-spt", "-lsa", "-seq", "-augment", "-mix",
                                           "-erasing", "-ema"]
    for r in rows:
        assert 0.0 <= r["test_acc"] <= 1.0 and r["steps"] == 4 and r["train_seconds"] > 0
        assert ("test_acc_ema" in r) == ("ema" in r["ingredients"])
    assert rows[0]["params"] > rows[1]["params"]  # SPT's wider embedding
    again = vit_ablation.main(["--smoke", "--design", "drop", "--out", str(out)])
    assert again["rows"] == rows  # written after every variant: a second run trains nothing
    with pytest.raises(SystemExit, match="another configuration"):
        vit_ablation.main(["--smoke", "--design", "add", "--out", str(out)])
