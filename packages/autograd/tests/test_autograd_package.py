import importlib.metadata
import re

import gradwise.autograd


def test_autograd_version_matches_its_distribution() -> None:
    assert gradwise.autograd.__version__ == importlib.metadata.version("gradwise-autograd")


def test_autograd_depends_only_on_the_package_below_it() -> None:
    requires = importlib.metadata.requires("gradwise-autograd") or []
    names = {re.split(r"[ ;=<>!~\[]", r, maxsplit=1)[0] for r in requires}
    assert names == {"gradwise-core"}
