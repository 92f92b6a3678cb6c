"""A bare dynamic autograd graph written in Python: a yardstick, not a library.

``benchmarks/overhead.py`` times it beside gradwise to show where the floor of a Python
framework lies on the machine at hand. A tensor is an array, a gradient and a node; a node
keeps its inputs and what its backward needs; backward visits the nodes in reverse
creation order and hands gradients on. It has none of what gradwise checks or offers: no
dtype or shape checks, no broadcasting back to the inputs' shapes, no grad modes, no
version counters, no hooks, no freeing of saved arrays, no forward mode.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import numpy as np

_seq = count().__next__
_new = object.__new__
_np_add = np.add
_np_multiply = np.multiply
_np_sum = np.add.reduce


class Node:
    """One recorded op: its inputs, its creation number and what its backward needs."""

    __slots__ = ("backward", "inputs", "saved", "seq")

    inputs: tuple[Bare, ...]
    seq: int
    saved: Any
    backward: Any


class Bare:
    """An array that records the ops applied to it."""

    __slots__ = ("data", "grad", "node")

    def __init__(self, data: Any, node: Node | None = None) -> None:
        self.data = data
        self.grad: Any = None
        self.node = node

    # Each op is written out in one function: one Python call per op, as in gradwise.
    def __add__(self, other: Bare) -> Bare:
        node = _new(Node)
        node.inputs = (self, other)
        node.seq = _seq()
        node.saved = None
        node.backward = _add_backward
        out = _new(Bare)
        out.data = _np_add(self.data, other.data)
        out.grad = None
        out.node = node
        return out

    def __mul__(self, other: Bare) -> Bare:
        node = _new(Node)
        node.inputs = (self, other)
        node.seq = _seq()
        node.saved = (self.data, other.data)
        node.backward = _mul_backward
        out = _new(Bare)
        out.data = _np_multiply(self.data, other.data)
        out.grad = None
        out.node = node
        return out

    def sum(self) -> Bare:
        """The sum of every element."""
        node = _new(Node)
        node.inputs = (self,)
        node.seq = _seq()
        node.saved = self.data.shape
        node.backward = _sum_backward
        out = _new(Bare)
        out.data = _np_sum(self.data, None)
        out.grad = None
        out.node = node
        return out

    def backward(self) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``grad`` (self is a scalar)."""
        assert self.node is not None
        pending: dict[Node, Any] = {self.node: np.ones_like(self.data)}
        order: list[Node] = []
        stack, seen = [self.node], {self.node}
        while stack:  # every node reachable from the root, once
            node = stack.pop()
            order.append(node)
            for t in node.inputs:
                if t.node is not None and t.node not in seen:
                    seen.add(t.node)
                    stack.append(t.node)
        order.sort(key=_by_seq, reverse=True)  # a node runs after every node that uses it
        for node in order:
            grads = node.backward(node, pending.pop(node))
            for t, g in zip(node.inputs, grads, strict=True):
                if t.node is None:
                    t.grad = g if t.grad is None else t.grad + g
                elif t.node in pending:
                    pending[t.node] = pending[t.node] + g
                else:
                    pending[t.node] = g


def _by_seq(node: Node) -> int:
    return node.seq


def _add_backward(node: Node, g: Any) -> tuple[Any, Any]:
    return g, g


def _mul_backward(node: Node, g: Any) -> tuple[Any, Any]:
    a, b = node.saved
    return g * b, g * a


def _sum_backward(node: Node, g: Any) -> tuple[Any]:
    out = np.empty(node.saved, g.dtype)  # quicker than np.broadcast_to or np.full here
    out.fill(g)
    return (out,)
