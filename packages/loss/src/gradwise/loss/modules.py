"""Callable loss objects: each stores its options and calls the matching function.

They follow PyTorch's ``torch.nn`` loss classes (same names, keywords and defaults) but
are plain objects, since ``gradwise.loss`` does not depend on ``gradwise.nn``. Options are
validated when the object is made.
"""

from __future__ import annotations

from gradwise.autograd.tensor import Tensor
from gradwise.loss._common import ArrayLike, check_reduction
from gradwise.loss.binary import binary_cross_entropy, binary_cross_entropy_with_logits
from gradwise.loss.classification import _check_label_smoothing, cross_entropy, nll_loss
from gradwise.loss.divergence import kl_div
from gradwise.loss.regression import huber_loss, l1_loss, mse_loss, smooth_l1_loss


class Loss:
    """Base of the loss objects: ``loss(input, target)`` calls ``forward``."""

    reduction: str

    def __init__(self, reduction: str = "mean") -> None:
        """Store the reduction after checking it.

        Args:
            reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        """
        self.reduction = check_reduction(reduction, type(self).__name__)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        raise NotImplementedError

    def __call__(self, input: Tensor, target: ArrayLike) -> Tensor:
        """Same as ``forward(input, target)``."""
        return self.forward(input, target)

    def _options(self) -> str:
        return f"reduction={self.reduction!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._options()})"


class MSELoss(Loss):
    """Mean squared error, ``(x - t)^2``: see :func:`gradwise.loss.mse_loss`."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(Loss):
    """Mean absolute error, ``|x - t|``: see :func:`gradwise.loss.l1_loss`."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return l1_loss(input, target, reduction=self.reduction)


class HuberLoss(Loss):
    """Huber loss with threshold ``delta``: see :func:`gradwise.loss.huber_loss`."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        """Store the options.

        Args:
            reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
            delta: where the loss turns linear; positive.
        """
        super().__init__(reduction)
        if not float(delta) > 0.0:
            raise ValueError(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = float(delta)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)

    def _options(self) -> str:
        return f"reduction={self.reduction!r}, delta={self.delta}"


class SmoothL1Loss(Loss):
    """Smooth L1 loss with threshold ``beta``: see :func:`gradwise.loss.smooth_l1_loss`."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        """Store the options.

        Args:
            reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
            beta: where the loss turns linear; non-negative.
        """
        super().__init__(reduction)
        if not float(beta) >= 0.0:
            raise ValueError(f"SmoothL1Loss: beta must be non-negative, got {beta}")
        self.beta = float(beta)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def _options(self) -> str:
        return f"reduction={self.reduction!r}, beta={self.beta}"


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy over class axis 1: see :func:`gradwise.loss.cross_entropy`."""

    def __init__(
        self,
        weight: ArrayLike | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        """Store the options.

        Args:
            weight: optional per-class weights ``(C,)``.
            ignore_index: a class index whose rows are skipped.
            reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
            label_smoothing: in ``[0, 1]``.
        """
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = int(ignore_index)
        self.label_smoothing = _check_label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return cross_entropy(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )

    def _options(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append("weight=...")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class NLLLoss(Loss):
    """Negative log-likelihood on log-probabilities: see :func:`gradwise.loss.nll_loss`."""

    def __init__(
        self,
        weight: ArrayLike | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        """Store the options.

        Args:
            weight: optional per-class weights ``(C,)``.
            ignore_index: a class index whose rows are skipped.
            reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        """
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return nll_loss(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class BCELoss(Loss):
    """Binary cross-entropy on probabilities: see :func:`gradwise.loss.binary_cross_entropy`."""

    def __init__(self, weight: ArrayLike | None = None, *, reduction: str = "mean") -> None:
        """Store the options.

        Args:
            weight: optional element weights, broadcastable to the input's shape.
            reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        """
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits, stable for any magnitude.

    See :func:`gradwise.loss.binary_cross_entropy_with_logits`.
    """

    def __init__(
        self,
        weight: ArrayLike | None = None,
        *,
        reduction: str = "mean",
        pos_weight: ArrayLike | None = None,
    ) -> None:
        """Store the options.

        Args:
            weight: optional element weights, broadcastable to the input's shape.
            reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
            pos_weight: optional positive-class weights, broadcast from the last axis.
        """
        super().__init__(reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return binary_cross_entropy_with_logits(
            input,
            target,
            self.weight,
            reduction=self.reduction,
            pos_weight=self.pos_weight,
        )


class KLDivLoss(Loss):
    """KL divergence of ``target`` from log-probabilities: see :func:`gradwise.loss.kl_div`."""

    def __init__(
        self,
        reduction: str = "mean",
        *,
        log_target: bool = False,
    ) -> None:
        """Store the options.

        Args:
            reduction: ``'mean'`` (element-wise, default), ``'batchmean'``, ``'sum'`` or
                ``'none'``.
            log_target: whether the target is given as log-probabilities.
        """
        self.reduction = check_reduction(reduction, "KLDivLoss", ("batchmean",))
        self.log_target = bool(log_target)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        """The loss of ``input`` against ``target``."""
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)

    def _options(self) -> str:
        return f"reduction={self.reduction!r}, log_target={self.log_target}"
