"""Module machinery: registration, walks, state dicts, modes, dtype casts, reprs, containers."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

from gradwise import nn
from gradwise.autograd import Tensor, randn, tensor
from gradwise.nn import Module, Parameter


class Block(Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.norm = nn.LayerNorm(8)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.fc(x))


class Net(Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.layers = nn.ModuleList([Block(), Block()])
        self.head = nn.Sequential(
            nn.Linear(8, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 2, bias=False)
        )

    def forward(self, idx: Tensor) -> Tensor:
        e = self.embed(idx)
        h = self.layers[0](e) + self.layers[1](e)
        out: Tensor = self.head(h)
        return out


# Key lists printed by torch 2.13 for the same module tree written with torch.nn.
TORCH_PARAMS = [
    "embed.weight",
    "layers.0.fc.weight",
    "layers.0.fc.bias",
    "layers.0.norm.weight",
    "layers.0.norm.bias",
    "layers.1.fc.weight",
    "layers.1.fc.bias",
    "layers.1.norm.weight",
    "layers.1.norm.bias",
    "head.0.weight",
    "head.0.bias",
    "head.2.weight",
    "head.2.bias",
    "head.3.weight",
]
TORCH_STATE = [
    *TORCH_PARAMS[:13],
    "head.2.running_mean",
    "head.2.running_var",
    "head.2.num_batches_tracked",
    "head.3.weight",
]
TORCH_MODULES = [
    "",
    "embed",
    "layers",
    "layers.0",
    "layers.0.fc",
    "layers.0.norm",
    "layers.1",
    "layers.1.fc",
    "layers.1.norm",
    "head",
    "head.0",
    "head.1",
    "head.2",
    "head.3",
]
TORCH_NET_REPR = """Net(
  (embed): Embedding(10, 4)
  (layers): ModuleList(
    (0-1): 2 x Block(
      (fc): Linear(in_features=4, out_features=8, bias=True)
      (norm): LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)
    )
  )
  (head): Sequential(
    (0): Linear(in_features=8, out_features=8, bias=True)
    (1): ReLU()
    (2): BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    (3): Linear(in_features=8, out_features=2, bias=False)
  )
)"""


def test_module_keys_match_torch() -> None:
    net = Net()
    assert [k for k, _ in net.named_parameters()] == TORCH_PARAMS
    assert list(net.state_dict()) == TORCH_STATE
    assert [k for k, _ in net.named_modules()] == TORCH_MODULES
    assert [k for k, _ in net.named_children()] == ["embed", "layers", "head"]
    assert [k for k, _ in net.named_buffers()] == [
        "head.2.running_mean",
        "head.2.running_var",
        "head.2.num_batches_tracked",
    ]
    assert len(list(net.parameters())) == len(TORCH_PARAMS)
    assert len(list(net.modules())) == len(TORCH_MODULES)


def test_module_repr_matches_torch() -> None:
    assert repr(Net()) == TORCH_NET_REPR


def test_module_forward_runs_end_to_end() -> None:
    net = Net()
    idx = tensor([[1, 2, 3], [4, 5, 6]]).reshape(-1)
    out = net(idx)
    assert out.shape == (6, 2)
    out.sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.dtype == np.float32


def test_module_attributes_stay_plain_and_typed() -> None:
    lin = nn.Linear(3, 2)
    assert isinstance(lin.weight, Parameter)
    assert lin.__dict__["weight"] is lin._parameters["weight"]
    lin.weight = Parameter(np.zeros((2, 3), dtype=np.float32))
    assert lin._parameters["weight"] is lin.weight
    with pytest.raises(TypeError, match="cannot assign ndarray as parameter 'weight'"):
        lin.weight = np.zeros((2, 3))  # type: ignore[assignment]
    lin.bias = None
    assert [k for k, _ in lin.named_parameters()] == ["weight"]
    del lin.weight
    assert "weight" not in lin._parameters


def test_module_shared_parameter_yielded_once() -> None:
    a = nn.Linear(3, 3)
    b = nn.Linear(3, 3)
    b.weight = a.weight
    seq = nn.Sequential(a, b)
    assert [k for k, _ in seq.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    # the state dict, as PyTorch's, lists the shared tensor under both names
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    shared = nn.Sequential(a, a)
    assert len(list(shared.parameters())) == 2
    assert [k for k, _ in shared.named_modules()] == ["", "0"]


def test_module_registration_before_init_is_explained() -> None:
    class Bad(Module):
        def __init__(self) -> None:
            self.w = Parameter(np.zeros(2, dtype=np.float32))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_module_register_buffer_and_parameter() -> None:
    m = Module()
    m.register_buffer("stat", Tensor(np.zeros(3)))
    m.register_buffer("scratch", Tensor(np.ones(2)), persistent=False)
    m.register_parameter("p", Parameter(np.ones(2)))
    m.register_parameter("absent", None)
    assert list(m.state_dict()) == ["p", "stat"]
    assert [k for k, _ in m.named_buffers()] == ["stat", "scratch"]
    m.stat = Tensor(np.full(3, 2.0))
    assert m._buffers["stat"] is m.__dict__["stat"]
    with pytest.raises(TypeError, match="buffer 'stat'"):
        m.stat = 3.0
    with pytest.raises(KeyError, match="non-empty"):
        m.register_buffer("a.b", None)
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("q", Tensor(np.ones(2)))  # type: ignore[arg-type]
    m.add_module("child", nn.ReLU())
    assert list(dict(m.named_children())) == ["child"]
    assert m.get_submodule("child") is m._modules["child"]


def test_module_train_eval_recurse_and_return_self() -> None:
    net = Net()
    assert net.training
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training
    assert not net.head[2].training
    with pytest.raises(ValueError, match="bool"):
        net.train(1)  # type: ignore[arg-type]


def test_module_zero_grad_and_requires_grad() -> None:
    lin = nn.Linear(3, 2)
    lin(randn(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad is not None
    np.testing.assert_array_equal(lin.weight.grad.numpy(), 0)
    lin.zero_grad()
    assert lin.weight.grad is None
    assert lin.bias is not None
    assert lin.bias.grad is None
    assert lin.requires_grad_(False) is lin
    assert not lin.weight.requires_grad
    out = lin(randn(2, 3))
    assert not out.requires_grad


def test_module_apply_visits_children_first() -> None:
    seen: list[str] = []
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


# ---- state dict ------------------------------------------------------------------------


def test_state_dict_shares_memory_and_is_detached() -> None:
    net = Net()
    sd = net.state_dict()
    w = net.layers[0].fc.weight  # type: ignore[attr-defined]
    assert sd["layers.0.fc.weight"].data is w.data
    assert not sd["layers.0.fc.weight"].requires_grad
    nbt = sd["head.2.num_batches_tracked"]
    assert nbt.dtype == np.int64
    assert nbt.shape == ()
    assert sd["head.2.running_var"].dtype == np.float32
    kept = net.state_dict(keep_vars=True)
    assert kept["layers.0.fc.weight"] is w
    assert next(iter(net.state_dict(prefix="model."))) == "model.embed.weight"


def test_load_state_dict_round_trip_keeps_objects_and_dtype() -> None:
    src, dst = Net(), Net()
    sd = {
        k: Tensor(v.numpy().astype(np.float64)) if v.dtype == np.float32 else v
        for k, v in src.state_dict().items()
    }
    sd["head.2.num_batches_tracked"] = Tensor(np.array(7))
    before = dst.embed.weight
    version = before.version_counter().value
    result = dst.load_state_dict(sd)
    assert result.missing_keys == []
    assert result.unexpected_keys == []
    assert dst.embed.weight is before
    assert dst.embed.weight.dtype == np.float32
    assert before.version_counter().value == version + 1
    for k, v in src.state_dict().items():
        if k != "head.2.num_batches_tracked":
            np.testing.assert_array_equal(dst.state_dict()[k].numpy(), v.numpy())
    bn = dst.head[2]
    assert isinstance(bn, nn.BatchNorm1d)
    assert bn.num_batches_tracked is not None
    assert bn.num_batches_tracked.item() == 7


def test_load_state_dict_accepts_arrays() -> None:
    lin = nn.Linear(2, 3)
    w = np.arange(6, dtype=np.float64).reshape(3, 2)
    lin.load_state_dict({"weight": w, "bias": np.zeros(3)})
    np.testing.assert_array_equal(lin.weight.numpy(), w)
    assert lin.weight.dtype == np.float32
    with pytest.raises(TypeError, match="'bias' must be a Tensor or a NumPy array"):
        lin.load_state_dict({"weight": w, "bias": [0.0, 0.0, 0.0]})  # type: ignore[dict-item]


def test_load_state_dict_strict_lists_missing_and_unexpected() -> None:
    lin = nn.Linear(2, 3)
    sd = lin.state_dict()
    del sd["bias"]
    sd["extra"] = Tensor(np.zeros(1))
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: bias") as info:
        lin.load_state_dict(sd)
    assert "Unexpected key(s) in state_dict: extra" in str(info.value)
    missing, unexpected = lin.load_state_dict(sd, strict=False)
    assert missing == ["bias"]
    assert unexpected == ["extra"]


def test_load_state_dict_shape_mismatch_installs_nothing() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4))
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    sd = {k: Tensor(np.full(v.shape, 9.0, dtype=np.float32)) for k, v in net.state_dict().items()}
    sd["1.weight"] = Tensor(np.zeros((4, 5), dtype=np.float32))
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"1\.weight.*\(4, 5\).*\(4, 3\)"):
            net.load_state_dict(sd, strict=strict)
        with pytest.raises(RuntimeError, match=r"size mismatch for 1\.weight"):
            net.load_state_dict(sd, strict=strict)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_load_state_dict_rejects_non_mapping() -> None:
    with pytest.raises(TypeError, match="mapping"):
        nn.Linear(2, 2).load_state_dict([1, 2])  # type: ignore[arg-type]


# ---- dtype ------------------------------------------------------------------------------


def test_to_float64_in_place_keeps_parameters() -> None:
    net = Net()
    params = list(net.parameters())
    net(tensor([1, 2, 3])).sum().backward()
    assert net.to(np.float64) is net
    assert [p is q for p, q in zip(params, net.parameters(), strict=True)] == [True] * len(params)
    for p in net.parameters():
        assert p.dtype == np.float64
        assert p.grad is not None
        assert p.grad.dtype == np.float64
    bn = net.head[2]
    assert isinstance(bn, nn.BatchNorm1d)
    assert bn.running_mean is not None
    assert bn.num_batches_tracked is not None
    assert bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    out = net(tensor([1, 2, 3]))
    assert out.dtype == np.float64
    assert net.float() is net
    assert net.embed.weight.dtype == np.float32
    assert net.double().embed.weight.dtype == np.float64
    assert net.to("cpu") is net
    assert net.to("float32").embed.weight.dtype == np.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(np.int64)
    with pytest.raises(ValueError, match="cpu"):
        net.to("cuda")


# ---- Parameter ----------------------------------------------------------------------------


def test_parameter_basics() -> None:
    p = Parameter([1.0, 2.0])
    assert p.dtype == np.float32
    assert p.requires_grad
    assert p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], dtype=float32, requires_grad=True)"
    t = Tensor(np.ones(3))
    q = Parameter(t)
    assert q.data is t.data
    assert q.dtype == np.float64
    frozen = Parameter(np.zeros(2), requires_grad=False)
    assert not frozen.requires_grad
    with pytest.raises(RuntimeError, match="only float tensors"):
        Parameter(np.array([1, 2]))
    assert type(p * 2.0) is Tensor


def test_module_deepcopy_gives_independent_leaves() -> None:
    lin = nn.Linear(3, 2)
    twin = copy.deepcopy(lin)
    assert twin.weight is not lin.weight
    np.testing.assert_array_equal(twin.weight.numpy(), lin.weight.numpy())
    twin(randn(4, 3)).sum().backward()
    assert twin.weight.grad is not None
    assert lin.weight.grad is None


# ---- containers -----------------------------------------------------------------------------


def test_sequential_indexing_slicing_and_append() -> None:
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3
    assert isinstance(seq[0], nn.Linear)
    assert isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential)
    assert len(head) == 2
    assert head[0] is seq[0]
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    seq.append(nn.Sigmoid())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert seq(randn(5, 2)).shape == (5, 1)
    with pytest.raises(IndexError, match="index 7 is out of range"):
        seq[7]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named[1] is named._modules["act"]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), 3)  # type: ignore[call-overload]


def test_module_list_operations() -> None:
    a, b, c = nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2)
    ml = nn.ModuleList([a])
    ml.append(b)
    ml.extend([c])
    assert len(ml) == 3
    assert ml.index(c) == 2
    ml.insert(0, nn.Tanh())
    assert [type(m).__name__ for m in ml] == ["Tanh", "Linear", "ReLU", "Linear"]
    assert list(ml.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    del ml[0]
    assert ml[0] is a
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(ml[1:], nn.ModuleList)
    with pytest.raises(ValueError, match="not in the container"):
        ml.index(nn.ReLU())


def test_module_dict_operations() -> None:
    md = nn.ModuleDict({"enc": nn.Linear(2, 2), "act": nn.ReLU()})
    assert list(md) == ["enc", "act"]
    assert "enc" in md
    assert list(md.state_dict()) == ["enc.weight", "enc.bias"]
    md["dec"] = nn.Linear(2, 1)
    assert md.keys() == ["enc", "act", "dec"]
    assert isinstance(md.pop("act"), nn.ReLU)
    assert len(md) == 2


def test_mlp_layout_and_keys() -> None:
    mlp = nn.MLP([64, 128, 64, 10])
    assert isinstance(mlp, nn.Sequential)
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert list(mlp.state_dict()) == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    assert [p.shape for p in mlp.parameters()] == [
        (128, 64),
        (128,),
        (64, 128),
        (64,),
        (10, 64),
        (10,),
    ]
    drop = nn.MLP([4, 8, 8, 2], activation=nn.Tanh, dropout=0.25)
    assert [type(m).__name__ for m in drop] == [
        "Linear",
        "Tanh",
        "Dropout",
        "Linear",
        "Tanh",
        "Dropout",
        "Linear",
    ]
    gelu = nn.MLP([3, 5, 1], activation=lambda: nn.GELU(approximate="tanh"))
    assert repr(gelu[1]) == "GELU(approximate='tanh')"
    assert nn.MLP([3, 5, 1], dtype=np.float64)(Tensor(np.ones((2, 3)))).dtype == np.float64
    with pytest.raises(ValueError, match="at least two sizes"):
        nn.MLP([3])
    with pytest.raises(ValueError, match="dropout"):
        nn.MLP([3, 2], dropout=1.5)


# ---- reprs -----------------------------------------------------------------------------------

# torch 2.13's reprs; gradwise names axes `axis` where torch says `dim`.
REPRS = [
    (lambda: nn.Linear(64, 128), "Linear(in_features=64, out_features=128, bias=True)"),
    (lambda: nn.Linear(3, 2, bias=False), "Linear(in_features=3, out_features=2, bias=False)"),
    (lambda: nn.LayerNorm(64), "LayerNorm((64,), eps=1e-05, elementwise_affine=True, bias=True)"),
    (
        lambda: nn.LayerNorm((3, 4), elementwise_affine=False),
        "LayerNorm((3, 4), eps=1e-05, elementwise_affine=False, bias=False)",
    ),
    (
        lambda: nn.BatchNorm1d(16),
        "BatchNorm1d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)",
    ),
    (lambda: nn.Embedding(10, 3), "Embedding(10, 3)"),
    (lambda: nn.Embedding(10, 3, padding_idx=0), "Embedding(10, 3, padding_idx=0)"),
    (lambda: nn.Dropout(0.2), "Dropout(p=0.2, inplace=False)"),
    (lambda: nn.GELU(), "GELU(approximate='none')"),
    (lambda: nn.GELU(approximate="tanh"), "GELU(approximate='tanh')"),
    (lambda: nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (lambda: nn.Softplus(), "Softplus(beta=1.0, threshold=20.0)"),
    (lambda: nn.ReLU(), "ReLU()"),
    (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (lambda: nn.Identity(), "Identity()"),
    (lambda: nn.Sigmoid(), "Sigmoid()"),
    (lambda: nn.Flatten(), "Flatten(start_axis=1, end_axis=-1)"),
    (lambda: nn.Softmax(1), "Softmax(axis=1)"),
    (lambda: nn.LogSoftmax(1), "LogSoftmax(axis=1)"),
]


@pytest.mark.parametrize(("make", "expected"), REPRS, ids=[r[1].split("(")[0] for r in REPRS])
def test_module_repr(make: object, expected: str) -> None:
    assert repr(make()) == expected  # type: ignore[operator]


def test_nested_repr_matches_torch() -> None:
    seq = nn.Sequential(
        nn.Linear(2, 3),
        nn.Sequential(nn.Linear(3, 3), nn.Tanh()),
        nn.ModuleList([nn.ReLU(), nn.ReLU()]),
    )
    assert repr(seq) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=3, bias=True)\n"
        "    (1): Tanh()\n"
        "  )\n"
        "  (2): ModuleList(\n"
        "    (0-1): 2 x ReLU()\n"
        "  )\n"
        ")"
    )


def test_module_without_forward_raises() -> None:
    with pytest.raises(NotImplementedError, match="forward"):
        Module()(1)
