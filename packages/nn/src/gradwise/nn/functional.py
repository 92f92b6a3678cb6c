"""``gradwise.nn.functional``: the functional forms of the layers and activations.

Activations are the autograd functions, re-exported so PyTorch-style code
(``F.relu(x)``) ports by changing the import.
"""

from __future__ import annotations

from gradwise.autograd import (
    dropout,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from gradwise.nn.activation import elu, hardtanh, mish, selu, swiglu
from gradwise.nn.conv import conv1d, conv2d
from gradwise.nn.dropout import dropout2d
from gradwise.nn.embedding import embedding
from gradwise.nn.linear import linear
from gradwise.nn.norm import batch_norm, group_norm, layer_norm, rms_norm
from gradwise.nn.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv1d",
    "conv2d",
    "dropout",
    "dropout2d",
    "elu",
    "embedding",
    "gelu",
    "group_norm",
    "hardtanh",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mish",
    "relu",
    "rms_norm",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "swiglu",
    "tanh",
]
