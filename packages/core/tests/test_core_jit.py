"""Kernel compilation: warm-up report, disk cache switches, no-cache fallback, fastmath flags."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest

import gradwise.core as gc
from gradwise.core import _config, _jit

Arr = np.ndarray[Any, Any]
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def test_warmup_reports_every_kernel_for_both_dtypes() -> None:
    report = gc.warmup()
    names = {r.kernel for r in report.records}
    assert names == set(_jit.REGISTRY)
    for name in _jit.REGISTRY:
        sigs = {(r.variant, r.signature.split("[")[0]) for r in report.records if r.kernel == name}
        assert {v for v, _ in sigs} == {"serial", "parallel"}, name
        assert any("float32" in s for _, s in sigs), name
        assert any("float64" in s for _, s in sigs), name
    assert all(r.source in ("compiled", "cache", "warm", "python") for r in report.records)
    assert "total" in report.table()
    # a second warm-up has nothing left to compile: the dispatchers are warm
    again = gc.warmup()
    assert again.compiled_seconds() == 0.0
    assert {r.source for r in again.records} == ({"python"} if JIT_DISABLED else {"warm"})


def test_fastmath_never_drops_nan_or_inf_semantics() -> None:
    assert not {"nnan", "ninf", "fast", "afn"} & set(_config.FASTMATH)


def _run(code: str, **env: str) -> str:
    full_env = {**os.environ, **env}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(JIT_DISABLED, reason="the disk cache only exists for compiled kernels")
def test_cache_switch_off_by_environment() -> None:
    out = _run(
        """
        import numpy as np, gradwise.core as gc
        print(gc.cache_enabled(), float(gc.ops.relu(np.array([-1.0, 2.0])).sum()))
        """,
        GRADWISE_NUMBA_CACHE="0",
    )
    assert out.split() == ["False", "2.0"]


@pytest.mark.skipif(JIT_DISABLED, reason="the disk cache only exists for compiled kernels")
def test_works_without_any_writable_cache_location() -> None:
    """A function with no source file on disk has no cache locator: gradwise falls back."""
    scope: dict[str, object] = {}
    exec("def twice(x, out):\n    for i in range(x.size):\n        out[i] = 2 * x[i]\n", scope)
    k = _jit.Kernel(cast(Callable[[Arr, Arr], None], scope["twice"]), 10)
    x = np.arange(4.0)
    out = np.empty_like(x)
    k.serial(x, out)
    np.testing.assert_array_equal(out, 2 * x)


_BLAS_PROBE_CODE = """
    import sys
    import numba, numpy as np
    import gradwise.core as gc
    gc.ops.relu(np.ones(1 << 17, dtype=np.float32))  # loads a kernel: Numba's array functions
    import numba.np.arraymath as am
    print("scipy.linalg" in sys.modules, am._HAVE_BLAS)

    @numba.njit
    def inner(a, b):
        return np.dot(a, b)  # compiles against SciPy's BLAS, imported now

    @numba.njit
    def convolve(a, b):
        return np.convolve(a, b)

    a = np.arange(4.0)
    print(inner(a, a), np.convolve(a, a).tolist() == convolve(a, a).tolist())
    """


@pytest.mark.skipif(JIT_DISABLED, reason="Numba's array functions load with compiled kernels")
def test_loading_kernels_skips_numbas_scipy_blas_probe_and_user_jit_still_works() -> None:
    pytest.importorskip("scipy")
    assert _run(_BLAS_PROBE_CODE).split() == ["False", "False", "14.0", "True"]
    probed = _run(_BLAS_PROBE_CODE, GRADWISE_NUMBA_BLAS_PROBE="1").split()
    assert probed == ["True", "True", "14.0", "True"]


_SCIPY_AT_IMPORT_CODE = """
    import sys
    import gradwise.core
    imported = "scipy" in sys.modules
    import scipy
    print(imported, sys.modules["scipy"] is scipy, scipy.__version__ > "1")
    """


def test_importing_gradwise_does_not_import_scipy_and_scipy_imports_after() -> None:
    pytest.importorskip("scipy")
    assert _run(_SCIPY_AT_IMPORT_CODE).split() == ["False", "True", "True"]
    # as Numba does on its own: with the probe on, or when SciPy came first
    assert _run(_SCIPY_AT_IMPORT_CODE, GRADWISE_NUMBA_BLAS_PROBE="1").split()[0] == "True"
    first = "import scipy\n" + textwrap.dedent(_SCIPY_AT_IMPORT_CODE)
    assert _run(first).split() == ["True", "True", "True"]


@pytest.mark.skipif(JIT_DISABLED, reason="measures compiled kernels")
def test_second_process_loads_kernels_from_cache() -> None:
    code = """
        import gradwise.core as gc
        r = gc.warmup(dtypes=("float32",), variants=("serial",))
        print(r.compiled_seconds(), r.cached_seconds(), len(r.records))
        """
    _run(code)  # make sure the cache is filled
    compiled, _cached, n = _run(code).split()
    assert float(compiled) == 0.0
    assert int(n) > 0
