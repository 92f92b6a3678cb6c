"""gradwise.nn: Modules, parameters, initialisers, data loading and safetensors saving.

``Module`` registers the ``Parameter``s, buffers and sub-modules assigned to it;
layers (``Linear``, ``LayerNorm``, ``BatchNorm1d``, ``Embedding``) run as single fused
graph nodes. ``gradwise.nn.init``, ``gradwise.nn.utils``, ``gradwise.nn.functional`` and
``gradwise.nn.data`` are submodules. ``save``/``load`` read and write the safetensors
format; ``save_checkpoint``/``load_checkpoint`` store whole training states without pickle.
"""

from gradwise.nn import data, functional, init, utils
from gradwise.nn.activation import (
    GELU,
    Flatten,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from gradwise.nn.container import MLP, ModuleDict, ModuleList, Sequential
from gradwise.nn.dropout import Dropout
from gradwise.nn.embedding import Embedding
from gradwise.nn.linear import Identity, Linear
from gradwise.nn.module import IncompatibleKeys, Module, StateDictError
from gradwise.nn.norm import BatchNorm1d, LayerNorm
from gradwise.nn.parameter import Parameter
from gradwise.nn.serialization import load, load_checkpoint, save, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "GELU",
    "MLP",
    "BatchNorm1d",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "IncompatibleKeys",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
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
