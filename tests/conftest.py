import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/gradcheck.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tinyvit package

import pytest  # noqa: E402


@pytest.fixture(params=["formulas", "fast"])
def path(request):
    """Run a test once on the formulas (tinyvit.ops, tinyvit.cnn) and once on the fast twins."""
    from tinyvit import fast

    with (fast.formulas() if request.param == "formulas" else fast.twins()):
        yield request.param
