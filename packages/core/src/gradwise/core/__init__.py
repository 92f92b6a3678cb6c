"""gradwise.core: NumPy storage, dtype policy, randomness, threads and Numba kernels.

Everything here works on plain NumPy arrays and knows nothing of autograd. ``ops`` is the
typed compute API the other gradwise packages call; it is the only user of the private
Numba kernels.
"""

from gradwise.core import (
    _config,  # noqa: F401  # first: it imports Numba (see its docstring)
    ops,
)
from gradwise.core._jit import cache_enabled
from gradwise.core.dtypes import (
    Array,
    Axis,
    DTypeLike,
    Shape,
    as_dtype,
    bool_,
    float32,
    float64,
    int64,
    is_floating,
    result_dtype,
)
from gradwise.core.ops import matmul, unbroadcast
from gradwise.core.random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    set_rng_state,
)
from gradwise.core.storage import as_array
from gradwise.core.threads import get_num_threads, max_threads, set_num_threads, threads
from gradwise.core.warmup import WarmupReport, warmup

__all__ = [
    "Array",
    "Axis",
    "DTypeLike",
    "Generator",
    "Shape",
    "WarmupReport",
    "as_array",
    "as_dtype",
    "bool_",
    "cache_enabled",
    "default_generator",
    "float32",
    "float64",
    "get_num_threads",
    "get_rng_state",
    "initial_seed",
    "int64",
    "is_floating",
    "manual_seed",
    "matmul",
    "max_threads",
    "ops",
    "result_dtype",
    "set_num_threads",
    "set_rng_state",
    "threads",
    "unbroadcast",
    "warmup",
]
