"""gradwise.loss: numerically stable loss functions, PyTorch's semantics.

Each loss is a function (``mse_loss``, ``cross_entropy``, ...) and a callable class
(``MSELoss``, ``CrossEntropyLoss``, ...) holding its options. Every loss is one fused
graph node with an analytic backward; cross-entropy with class indices runs the fused
kernels ``gradwise.core.ops.softmax_cross_entropy`` / ``..._backward``.
"""

from gradwise.loss import _double_backward  # noqa: F401  (create_graph rules)
from gradwise.loss.binary import binary_cross_entropy, binary_cross_entropy_with_logits
from gradwise.loss.classification import cross_entropy, nll_loss
from gradwise.loss.divergence import kl_div
from gradwise.loss.modules import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from gradwise.loss.regression import huber_loss, l1_loss, mse_loss, smooth_l1_loss

__version__ = "0.1.0"

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "Loss",
    "MSELoss",
    "NLLLoss",
    "SmoothL1Loss",
    "__version__",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]
