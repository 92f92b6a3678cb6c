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
from gradwise.nn.embedding import embedding
from gradwise.nn.linear import linear
from gradwise.nn.norm import batch_norm, layer_norm

__all__ = [
    "batch_norm",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]
