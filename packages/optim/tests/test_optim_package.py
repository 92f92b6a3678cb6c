import importlib.metadata
import re

import gradwise.optim


def test_optim_version_matches_its_distribution() -> None:
    assert gradwise.optim.__version__ == importlib.metadata.version("gradwise-optim")


def test_optim_depends_only_on_the_package_below_it() -> None:
    requires = importlib.metadata.requires("gradwise-optim") or []
    names = {re.split(r"[ ;=<>!~\[]", r, maxsplit=1)[0] for r in requires}
    assert names == {"gradwise-autograd"}
