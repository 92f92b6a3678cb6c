"""Every differentiable op: one class with forward and backward side by side, plus its
public function. ``Tensor`` methods and operators are one-line calls to these functions.
"""
