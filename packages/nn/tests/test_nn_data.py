import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise.autograd import Tensor
from gradwise.core import manual_seed
from gradwise.nn.data import DataLoader, TensorDataset


def _dataset(n: int = 10) -> TensorDataset:
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(Tensor(x), y)


def test_nn_tensor_dataset_indexing_and_length() -> None:
    ds = _dataset()
    assert len(ds) == 10
    x, y = ds[3]
    assert isinstance(x, Tensor)
    np.testing.assert_array_equal(x.data, [9, 10, 11])
    assert y.item() == 3
    assert ds[-1][1].item() == 9
    with pytest.raises(IndexError, match="index 10 is out of range for 10 samples"):
        ds[10]


def test_nn_tensor_dataset_errors() -> None:
    with pytest.raises(ValueError, match="needs at least one tensor"):
        TensorDataset()
    with pytest.raises(
        ValueError, match=r"tensor 1 has shape \(4,\) but tensor 0 has shape \(3, 2\)"
    ):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.zeros(()))
    with pytest.raises(TypeError, match="argument 0"):
        TensorDataset("abc")  # type: ignore[arg-type]


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 40), st.integers(1, 12), st.booleans(), st.booleans())
def test_nn_loader_batches_cover_the_data(n: int, batch: int, shuffle: bool, drop: bool) -> None:
    loader = DataLoader(_dataset(n), batch_size=batch, shuffle=shuffle, drop_last=drop, seed=1)
    batches = list(loader)
    assert len(batches) == len(loader)
    expected = n // batch if drop else -(-n // batch)
    assert len(loader) == expected
    seen = np.concatenate([b[1].data for b in batches]) if batches else np.zeros(0, np.int64)
    if not drop:
        assert sorted(seen.tolist()) == list(range(n))
    for xb, yb in batches:
        assert xb.shape == (len(yb), 3)
        assert xb.dtype == np.float32
        np.testing.assert_array_equal(xb.data[:, 0], yb.data * 3)
        if drop:
            assert len(yb) == batch
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_nn_loader_seeded_shuffle_is_reproducible_and_changes_per_epoch() -> None:
    a = DataLoader(_dataset(20), batch_size=20, shuffle=True, seed=5)
    b = DataLoader(_dataset(20), batch_size=20, shuffle=True, seed=5)
    first_a, second_a = (next(iter(a))[1].data.tolist() for _ in range(2))
    first_b = next(iter(b))[1].data.tolist()
    assert first_a == first_b
    assert first_a != second_a
    assert sorted(first_a) == list(range(20))


def test_nn_loader_unseeded_shuffle_follows_manual_seed() -> None:
    loader = DataLoader(_dataset(20), batch_size=20, shuffle=True)
    manual_seed(3)
    one = next(iter(loader))[1].data.tolist()
    manual_seed(3)
    two = next(iter(loader))[1].data.tolist()
    assert one == two


def test_nn_loader_state_dict_resumes_the_shuffle_stream() -> None:
    loader = DataLoader(_dataset(20), batch_size=20, shuffle=True, seed=9)
    next(iter(loader))
    state = loader.state_dict()
    expected = next(iter(loader))[1].data.tolist()
    fresh = DataLoader(_dataset(20), batch_size=20, shuffle=True, seed=9)
    fresh.load_state_dict(state)
    assert next(iter(fresh))[1].data.tolist() == expected
    assert DataLoader(_dataset(), shuffle=True).state_dict() == {}


class _Squares:
    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> tuple[np.ndarray, float]:
        return np.full(2, i, dtype=np.float32), float(i * i)


def test_nn_loader_collates_any_dataset() -> None:
    batches = list(DataLoader(_Squares(), batch_size=2))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(batches[1][0].data, [[2, 2], [3, 3]])
    np.testing.assert_array_equal(batches[1][1].data, [4.0, 9.0])
    assert batches[1][1].dtype == np.float32


def test_nn_loader_argument_errors() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        DataLoader(_dataset(), batch_size=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(3)  # type: ignore[arg-type]
