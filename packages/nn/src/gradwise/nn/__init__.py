"""gradwise.nn: Modules, parameters, initialisers, data loading and safetensors saving.

``Module`` registers the ``Parameter``s, buffers and sub-modules assigned to it;
layers (``Linear``, ``LayerNorm``, ``BatchNorm1d``, ``Embedding``) run as single fused
graph nodes. ``gradwise.nn.init``, ``gradwise.nn.utils``, ``gradwise.nn.functional`` and
``gradwise.nn.data`` are submodules. ``save``/``load`` read and write the safetensors
format; ``save_checkpoint``/``load_checkpoint`` store whole training states without pickle.
"""

from gradwise.nn import (
    _double_backward,  # noqa: F401  (create_graph rules)
    data,
    functional,
    init,
    utils,
)
from gradwise.nn.activation import (
    ELU,
    GELU,
    SELU,
    Flatten,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from gradwise.nn.container import MLP, ModuleDict, ModuleList, Sequential
from gradwise.nn.conv import Conv1d, Conv2d
from gradwise.nn.dropout import Dropout, Dropout2d
from gradwise.nn.embedding import Embedding
from gradwise.nn.linear import Identity, Linear
from gradwise.nn.module import IncompatibleKeys, Module, StateDictError
from gradwise.nn.norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from gradwise.nn.parameter import Parameter
from gradwise.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from gradwise.nn.serialization import load, load_checkpoint, save, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "ELU",
    "GELU",
    "MLP",
    "SELU",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "Dropout",
    "Dropout2d",
    "Embedding",
    "Flatten",
    "GroupNorm",
    "Hardtanh",
    "Identity",
    "IncompatibleKeys",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Mish",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "RMSNorm",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "StateDictError",
    "Tanh",
    "__version__",
    "data",
    "functional",
    "init",
    "load",
    "load_checkpoint",
    "save",
    "save_checkpoint",
    "utils",
]
