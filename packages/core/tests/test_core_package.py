import importlib.metadata
import re

import gradwise.core


def test_core_depends_on_numpy_and_numba_only() -> None:
    requires = importlib.metadata.requires("gradwise-core") or []
    names = {re.split(r"[ ;=<>!~\[]", r, maxsplit=1)[0] for r in requires}
    assert names == {"numpy", "numba"}


def test_core_public_names_are_documented() -> None:
    for name in gradwise.core.__all__:
        obj = getattr(gradwise.core, name)
        if callable(obj) and not isinstance(obj, type(gradwise.core.float32)):
            assert getattr(obj, "__doc__", None), name
