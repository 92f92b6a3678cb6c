"""Data loading: ``TensorDataset`` and ``DataLoader``, as in ``torch.utils.data``.

``DataLoader`` yields batches as tuples of Tensors. A ``TensorDataset`` is batched by
indexing its arrays once per batch (no per-sample Python loop); any other dataset (an
object with ``__len__`` and ``__getitem__``) has its samples stacked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from gradwise.autograd import Tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array
from gradwise.core.random import Generator, default_generator
from gradwise.core.storage import as_array

Batch = tuple[Tensor, ...]


class Dataset(Protocol):
    """What ``DataLoader`` needs of a dataset: a length and integer indexing."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


def _as_data(value: object, op: str, position: int) -> Array:
    if isinstance(value, Tensor):
        return value.data
    try:
        return as_array(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{op}: argument {position} cannot be used as a tensor: {exc}") from None


class TensorDataset:
    """Samples are rows of the given tensors: ``dataset[i] == (t0[i], t1[i], ...)``.

    Every tensor must have the same first dimension (the number of samples).
    """

    def __init__(self, *tensors: Tensor | Array) -> None:
        op = "TensorDataset"
        if not tensors:
            raise ValueError(f"{op}: needs at least one tensor")
        arrays = [_as_data(t, op, i) for i, t in enumerate(tensors)]
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"{op}: tensor {i} is 0-d; each tensor needs a sample axis")
        n = arrays[0].shape[0]
        for i, a in enumerate(arrays[1:], start=1):
            if a.shape[0] != n:
                raise ValueError(
                    f"{op}: tensor {i} has shape {cops.fmt_shape(a.shape)} but tensor 0 has "
                    f"shape {cops.fmt_shape(arrays[0].shape)}; every tensor needs the same "
                    f"first dimension ({n})"
                )
        self.arrays: tuple[Array, ...] = tuple(arrays)
        self.tensors: tuple[Tensor, ...] = tuple(Tensor._wrap(a) for a in arrays)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def __getitem__(self, index: int) -> Batch:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"TensorDataset: index {index} is out of range for {n} samples")
        return tuple(Tensor._wrap(np.array(a[index])) for a in self.arrays)

    def batch(self, indices: Array) -> Batch:
        """The samples at ``indices`` (an int64 array), one Tensor per dataset tensor."""
        return tuple(Tensor._wrap(a[indices]) for a in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(cops.fmt_shape(a.shape) for a in self.arrays)
        return f"TensorDataset({shapes})"


def _collate(samples: Sequence[Any], op: str) -> Batch:
    """Stack a list of samples (tuples of tensors/arrays/numbers, or single ones)."""
    first = samples[0]
    if isinstance(first, tuple | list):
        width = len(first)
        for s in samples:
            if not isinstance(s, tuple | list) or len(s) != width:
                raise ValueError(f"{op}: samples have different structures: {first!r} vs {s!r}")
        columns = [[s[j] for s in samples] for j in range(width)]
    else:
        columns = [list(samples)]
    batch = []
    for j, column in enumerate(columns):
        arrays = [_as_data(v, op, j) for v in column]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            listed = ", ".join(sorted(cops.fmt_shape(s) for s in shapes))
            raise ValueError(f"{op}: field {j} of the samples has different shapes: {listed}")
        batch.append(Tensor._wrap(np.stack(arrays)))
    return tuple(batch)


class DataLoader:
    """Iterate over a dataset in batches, optionally shuffled each epoch.

    Args:
        dataset: a :class:`TensorDataset` or any object with ``__len__`` and
            ``__getitem__`` returning a sample (a tuple of tensors, arrays or numbers).
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: draw a new permutation of the samples at the start of every epoch.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        seed: shuffle with a generator of this seed (its own stream, so other random
            draws do not change the order); ``None`` uses gradwise's default generator,
            which ``manual_seed`` drives.

    ``len(loader)`` is the number of batches per epoch.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
    ) -> None:
        op = "DataLoader"
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"{op}: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"{op}: batch_size must be at least 1, got {batch_size}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                f"{op}: dataset must have __len__ and __getitem__, got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.generator: Generator = default_generator if seed is None else Generator(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def _order(self) -> Array:
        n = len(self.dataset)
        if self.shuffle:
            return self.generator.permutation(n)
        return np.arange(n, dtype=np.int64)

    def __iter__(self) -> Iterator[Batch]:
        order = self._order()
        size = self.batch_size
        stop = len(self) * size
        fast = isinstance(self.dataset, TensorDataset)
        for start in range(0, stop, size):
            idx = order[start : start + size]
            if fast:
                yield self.dataset.batch(idx)  # type: ignore[attr-defined]
            else:
                yield _collate([self.dataset[int(i)] for i in idx], "DataLoader")

    def state_dict(self) -> dict[str, Any]:
        """The shuffling generator's state (for checkpoints; empty when ``seed`` is None,
        since the default generator is saved with ``gradwise.core.get_rng_state()``).
        """
        if self.seed is None:
            return {}
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        if self.seed is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})"
        )


__all__ = ["DataLoader", "Dataset", "TensorDataset"]
