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


@pytest.fixture(autouse=True, scope="session")
def no_timing_table(tmp_path_factory):
    """No test reads a timing table measured on this machine ($XDG_CACHE_HOME/tinyvit/
    conv_routes.json, `tinyvit.fast.tuning`): the convolution twin takes its rule's routes,
    and tests of a route pin it (`tinyvit.fast.conv.pinned`)."""
    import os

    from tinyvit.fast import tuning

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    tuning.forget()
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
    tuning.forget()
