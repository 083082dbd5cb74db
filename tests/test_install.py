"""The README's test command tests the installed package, not this checkout.

README.md (and ``.ci/run``) run the tests with ``SKMOE_TEST_INSTALLED=1`` after
``pip install``; this test then checks that the ``skmoe`` every test imports is
the copy in the environment's site-packages, so a test run that picked up the
source tree (an editable install, or the checkout on ``sys.path``) fails.
"""

import os
import sys
import sysconfig
from pathlib import Path

import pytest

import skmoe

SOURCE_PACKAGE = Path(__file__).resolve().parents[1] / "skmoe"

pytestmark = pytest.mark.skipif(
    os.environ.get("SKMOE_TEST_INSTALLED") != "1",
    reason="set SKMOE_TEST_INSTALLED=1 to check that the installed package is tested",
)


def test_skmoe_is_the_installed_package():
    package = Path(skmoe.__file__).resolve().parent
    assert package != SOURCE_PACKAGE, f"the tests import the source tree: {package}"
    site_packages = {
        Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")
    }
    assert package.parent in site_packages, (
        f"skmoe imported from {package}, not from {sorted(map(str, site_packages))}"
    )


def test_every_skmoe_module_comes_from_the_installed_package():
    package = Path(skmoe.__file__).resolve().parent
    stray = {
        name: module.__file__
        for name, module in list(sys.modules.items())
        if (name == "skmoe" or name.startswith("skmoe."))
        and getattr(module, "__file__", None)
        and package not in Path(module.__file__).resolve().parents
    }
    assert not stray, f"skmoe modules from outside {package}: {stray}"
