import importlib.metadata
import re

import gradwise.nn


def test_nn_version_matches_its_distribution() -> None:
    assert gradwise.nn.__version__ == importlib.metadata.version("gradwise-nn")


def test_nn_depends_only_on_the_package_below_it() -> None:
    requires = importlib.metadata.requires("gradwise-nn") or []
    names = {re.split(r"[ ;=<>!~\[]", r, maxsplit=1)[0] for r in requires}
    assert names == {"gradwise-autograd", "safetensors"}
