import importlib.metadata
import re

import gradwise.loss


def test_loss_version_matches_its_distribution() -> None:
    assert gradwise.loss.__version__ == importlib.metadata.version("gradwise-loss")


def test_loss_depends_only_on_the_package_below_it() -> None:
    requires = importlib.metadata.requires("gradwise-loss") or []
    names = {re.split(r"[ ;=<>!~\[]", r, maxsplit=1)[0] for r in requires}
    assert names == {"gradwise-autograd"}
