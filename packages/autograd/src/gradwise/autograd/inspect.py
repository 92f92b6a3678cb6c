"""Graph inspection: what a graph holds, what it saves for backward, where gradients stop.

- :func:`trace_graph` walks the graph behind a tensor once (iteratively: graphs may be
  100,000 nodes deep) and returns a :class:`GraphReport`: node count, depth, op names,
  one record per node, and the bytes each node saves for backward (the autograd memory
  report). After ``backward()`` its :meth:`GraphReport.gradient_flow_summary` gives each
  leaf's gradient norm and its zero and non-finite counts.
- :func:`to_dot` writes the graph as Graphviz DOT text (no dependency on Graphviz).
- :func:`explain` says, for each tensor the output does not reach, why and where.

A report keeps plain records and weak references to the leaves, never the nodes, so it
does not keep a graph (or its saved arrays) alive.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds

from gradwise.autograd import anomaly as _anomaly
from gradwise.autograd.function import Cut, Node
from gradwise.autograd.grad_mode import is_grad_enabled
from gradwise.autograd.tensor import Tensor
from gradwise.core import ops as cops
from gradwise.core.dtypes import Array, Shape

__all__ = [
    "ExplainEntry",
    "ExplainReport",
    "GradientFlowSummary",
    "GraphReport",
    "LeafGradient",
    "NodeRecord",
    "TensorsArg",
    "explain",
    "format_bytes",
    "to_dot",
    "trace_graph",
]

TensorsArg = Tensor | Sequence[Tensor] | Mapping[str, Tensor] | Iterable[tuple[str, Tensor]]
"""What :func:`explain` and ``names=`` accept: one tensor, a sequence, a mapping
name -> tensor, or ``(name, tensor)`` pairs (``model.named_parameters()``)."""


def format_bytes(n: int) -> str:
    """``n`` bytes as ``"512 B"``, ``"1.5 KiB"``, ``"2.0 MiB"``..."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One graph node, as :func:`trace_graph` saw it.

    Attributes:
        index: position in :attr:`GraphReport.nodes` (the root is 0).
        name: ``node.name()`` (``"MulBackward"``, ``"AccumulateGrad"``).
        id: ``id()`` of the node object when traced.
        inputs: for each input of the op, the index of its node's record, or None for
            an input that does not require grad.
        input_shapes: the shapes of the op's inputs (``node.shapes``).
        input_dtypes: the dtypes of the op's inputs (``node.dtypes``).
        shape: the shape of the node's output (for a leaf, of the leaf tensor), when
            known: from the consumer's input shapes, or the traced tensor for the root.
        dtype: the output's dtype, when known.
        saved_bytes: bytes of the arrays this node keeps for backward (memory shared
            by two of them counted once); 0 once released by a backward.
        saved_arrays: how many arrays it keeps for backward.
        freed: whether a backward without ``retain_graph`` released its saved arrays.
        is_leaf: True for an ``AccumulateGrad`` (a leaf that requires grad).
        leaf_name: the leaf's name when the caller passed ``names=``.
        created_at: ``file:line in function`` where the op was created, when it was
            created inside ``detect_anomaly()`` (None otherwise).
    """

    index: int
    name: str
    id: int
    inputs: tuple[int | None, ...]
    input_shapes: tuple[Shape, ...]
    input_dtypes: tuple[np.dtype[Any], ...]
    shape: Shape | None
    dtype: np.dtype[Any] | None
    saved_bytes: int
    saved_arrays: int
    freed: bool
    is_leaf: bool
    leaf_name: str | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class LeafGradient:
    """One leaf's gradient after backward (an entry of :class:`GradientFlowSummary`).

    Attributes:
        name: the caller's name for the leaf, else ``"leaf <k>"``.
        shape: the leaf's shape.
        has_grad: whether ``.grad`` is set.
        norm: the gradient's L2 norm (computed in float64), None without a gradient.
        zeros: how many gradient entries are exactly zero.
        nonfinite: how many are NaN or infinite.
    """

    name: str
    shape: Shape
    has_grad: bool
    norm: float | None
    zeros: int
    nonfinite: int

    @property
    def size(self) -> int:
        """Number of elements of the leaf."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class GradientFlowSummary:
    """Per-leaf gradient statistics of a traced graph (:meth:`GraphReport.gradient_flow_summary`).

    Attributes:
        leaves: one entry per leaf the graph reaches (still alive), in trace order.
    """

    leaves: tuple[LeafGradient, ...]

    @property
    def missing(self) -> list[str]:
        """Names of the reached leaves whose ``.grad`` is None (no backward ran yet?)."""
        return [e.name for e in self.leaves if not e.has_grad]

    @property
    def nonfinite(self) -> list[str]:
        """Names of the leaves with a NaN or infinite gradient entry."""
        return [e.name for e in self.leaves if e.nonfinite]

    def __getitem__(self, name: str) -> LeafGradient:
        for e in self.leaves:
            if e.name == name:
                return e
        raise KeyError(f"gradient_flow_summary: no leaf named {name!r}")

    def __str__(self) -> str:
        width = max([len("leaf"), *(len(e.name) for e in self.leaves)])
        lines = [
            f"{'leaf':<{width}}  {'shape':<14} {'grad norm':>12} {'zeros':>12} {'non-finite':>10}"
        ]
        for e in self.leaves:
            if e.norm is None:
                stats = f"{'None':>12} {'-':>12} {'-':>10}"
            else:
                stats = f"{e.norm:>12.4g} {f'{e.zeros}/{e.size}':>12} {e.nonfinite:>10}"
            lines.append(f"{e.name:<{width}}  {cops.fmt_shape(e.shape):<14} {stats}")
        if self.missing:
            lines.append(f"no gradient: {', '.join(self.missing)}")
        if self.nonfinite:
            lines.append(f"non-finite gradient: {', '.join(self.nonfinite)}")
        return "\n".join(lines)


@dataclass
class GraphReport:
    """What :func:`trace_graph` found behind a tensor.

    Attributes:
        node_count: number of distinct nodes, ``AccumulateGrad`` leaves included.
        depth: number of nodes on the longest path from the root to a leaf (0 for a
            tensor without a graph).
        op_names: node name -> how many nodes have it.
        nodes: one :class:`NodeRecord` per node, the root first, each input after
            the first node that consumes it (depth-first).
        saved_bytes: bytes kept for backward by the whole graph, memory shared by
            several nodes counted once (the per-node figures are in ``nodes``).
        edge_count: number of (input -> consumer) edges.
        root_shape: shape of the traced tensor.
        root_dtype: dtype of the traced tensor.
        saved_activation_bytes: the part of ``saved_bytes`` that is not the data of a
            leaf the graph reaches (parameters): what the forward pass added to memory
            for backward, the figure checkpointing reduces.
    """

    node_count: int
    depth: int
    op_names: Counter[str]
    nodes: list[NodeRecord]
    saved_bytes: int
    edge_count: int
    root_shape: Shape
    root_dtype: np.dtype[Any]
    saved_activation_bytes: int = 0
    _leaves: list[tuple[int, weakref.ref[Tensor]]] = field(default_factory=list, repr=False)

    @property
    def leaves(self) -> list[NodeRecord]:
        """The ``AccumulateGrad`` records (leaves that require grad), in trace order."""
        return [r for r in self.nodes if r.is_leaf]

    @property
    def saved_bytes_by_node(self) -> list[int]:
        """``nodes[i].saved_bytes`` for every node (their sum may exceed
        :attr:`saved_bytes` when nodes share saved memory).
        """
        return [r.saved_bytes for r in self.nodes]

    @property
    def saved_bytes_by_op(self) -> dict[str, int]:
        """Node name -> the sum of its nodes' saved bytes."""
        out: dict[str, int] = {}
        for r in self.nodes:
            out[r.name] = out.get(r.name, 0) + r.saved_bytes
        return out

    def gradient_flow_summary(self, names: TensorsArg | None = None) -> GradientFlowSummary:
        """Per reached leaf: shape, gradient L2 norm, zero and non-finite entry counts.

        Call it after ``backward()``. Leaves whose ``.grad`` is None are listed in
        :attr:`GradientFlowSummary.missing`; leaves garbage-collected since the trace
        are left out.

        Args:
            names: the caller's names for leaves (e.g. ``dict(model.named_parameters())``);
                names given to :func:`trace_graph` are used otherwise.
        """
        by_id = _names_by_id(names, "gradient_flow_summary") if names is not None else {}
        entries: list[LeafGradient] = []
        for k, (index, ref) in enumerate(self._leaves):
            leaf = ref()
            if leaf is None:
                continue
            name = by_id.get(id(leaf)) or self.nodes[index].leaf_name or f"leaf {k}"
            grad = leaf.grad
            if grad is None:
                entries.append(LeafGradient(name, leaf.shape, False, None, 0, 0))
                continue
            g = grad.data
            finite = np.isfinite(g)
            norm = float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
            entries.append(
                LeafGradient(
                    name,
                    leaf.shape,
                    True,
                    norm,
                    int(np.count_nonzero(g == 0)),
                    int(g.size - np.count_nonzero(finite)),
                )
            )
        return GradientFlowSummary(tuple(entries))

    def to_dot(self, name: str = "graph") -> str:
        """The graph as Graphviz DOT text: ops as boxes labelled with their saved
        bytes, leaves as ellipses labelled with their shape, edges input -> consumer.

        Args:
            name: the DOT graph's name.
        """
        return _dot(self, name)

    def summary(self) -> str:
        """A table: totals, then one row per op name (count, saved bytes)."""
        lines = [
            f"graph of a {cops.fmt_shape(self.root_shape)} {self.root_dtype} tensor: "
            f"{self.node_count} nodes ({len(self._leaves)} leaves), {self.edge_count} edges, "
            f"depth {self.depth}, {format_bytes(self.saved_bytes)} saved for backward "
            f"({format_bytes(self.saved_activation_bytes)} of it not parameters' data)",
        ]
        if not self.nodes:
            return lines[0]
        by_op = self.saved_bytes_by_op
        width = max(len("op"), *(len(n) for n in self.op_names))
        lines.append(f"{'op':<{width}}  {'count':>7}  {'saved':>10}")
        for op, count in sorted(self.op_names.items(), key=lambda kv: (-by_op[kv[0]], kv[0])):
            lines.append(f"{op:<{width}}  {count:>7}  {format_bytes(by_op[op]):>10}")
        return "\n".join(lines)

    def memory_report(self, top: int = 10) -> str:
        """The ``top`` nodes saving the most bytes for backward, one row each.

        Args:
            top: how many nodes to list (the rest are summed in a last row).
        """
        ranked = sorted(
            (r for r in self.nodes if not r.is_leaf), key=lambda r: (-r.saved_bytes, r.index)
        )
        lines = [
            f"saved for backward: {format_bytes(self.saved_bytes)} in total "
            f"({self.saved_bytes} bytes, shared memory counted once)",
            f"{'node':>6}  {'op':<24} {'output':<16} {'arrays':>6}  {'saved':>10}",
        ]
        for r in ranked[:top]:
            shape = "?" if r.shape is None else cops.fmt_shape(r.shape)
            lines.append(
                f"{r.index:>6}  {r.name:<24} {shape:<16} {r.saved_arrays:>6}  "
                f"{format_bytes(r.saved_bytes):>10}"
                + (f"  at {r.created_at}" if r.created_at else "")
            )
        rest = ranked[top:]
        if rest:
            total = sum(r.saved_bytes for r in rest)
            more = f"({len(rest)} more node{'s' if len(rest) > 1 else ''})"
            lines.append(f"{'':>6}  {more:<48} {format_bytes(total):>10}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ---- tracing -------------------------------------------------------------------------


def _saved_arrays(node: Node) -> list[Array]:
    """The arrays in a node's ``s_*`` slots (also inside tuples/lists, or tensors')."""
    out: list[Array] = []
    for slot in getattr(type(node), "_saved_slots", ()):
        stack = [getattr(node, slot, None)]
        while stack:
            v = stack.pop()
            if isinstance(v, np.ndarray):
                out.append(v)
            elif isinstance(v, np.generic):  # a 0-d result NumPy gave as a scalar
                out.append(np.asarray(v))
            elif isinstance(v, Tensor):
                out.append(v.data)
            elif isinstance(v, (tuple, list)):
                stack.extend(v)
    return out


def _extent(a: Array) -> tuple[int, int]:
    """The ``[low, high)`` addresses of an array's elements."""
    if a.flags.c_contiguous:  # the common case, without byte_bounds' stride walk
        low: int = a.__array_interface__["data"][0]
        return low, low + a.nbytes
    lo, hi = byte_bounds(a)
    return int(lo), int(hi)


def _extents(arrays: Iterable[Array]) -> list[tuple[int, int]]:
    return [_extent(a) for a in arrays if a.size]


def _union_bytes(intervals: list[tuple[int, int]]) -> int:
    """Bytes covered by the union of ``[low, high)`` address ranges."""
    if not intervals:
        return 0
    intervals.sort()
    total = 0
    low, high = intervals[0]
    for lo, hi in intervals[1:]:
        if lo > high:
            total += high - low
            low, high = lo, hi
        elif hi > high:
            high = hi
    return total + high - low


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _overlap_bytes(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Bytes covered both by the union of ``a`` and by the union of ``b``."""
    x, y = _merged(a), _merged(b)
    i = j = total = 0
    while i < len(x) and j < len(y):
        lo, hi = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if hi > lo:
            total += hi - lo
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return total


def _created_at(node: Node) -> str | None:
    """Where anomaly mode saw ``node`` created, if it did."""
    try:
        return _anomaly._SITES.get(node)
    except TypeError:  # pragma: no cover - a node type without weak references
        return None


def _names_by_id(names: TensorsArg, op: str) -> dict[int, str]:
    return {id(t): n for n, t in _named(names, op)}


def _named(tensors: TensorsArg, op: str) -> list[tuple[str, Tensor]]:
    """``tensors`` as (name, tensor) pairs; unnamed ones are called ``tensors[i]``."""
    if isinstance(tensors, Tensor):
        return [("tensor", tensors)]
    if isinstance(tensors, Mapping):
        pairs = list(tensors.items())
    else:
        pairs = []
        for i, item in enumerate(tensors):
            if isinstance(item, Tensor):
                pairs.append((f"tensors[{i}]", item))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor):
                pairs.append((str(item[0]), item[1]))
            else:
                raise TypeError(
                    f"{op}: expected Tensors, a mapping name -> Tensor or (name, Tensor) "
                    f"pairs, got {type(item).__name__} at position {i}"
                )
    for name, t in pairs:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name!r} is a {type(t).__name__}, not a Tensor")
    return pairs


def _walk(root: Node) -> tuple[list[Node], dict[int, int]]:
    """Every node reachable from ``root``, each once (iterative depth-first), and
    id(node) -> index. The list holds the nodes while the caller works.
    """
    order: list[Node] = [root]
    index = {id(root): 0}
    stack = [root]
    while stack:
        node = stack.pop()
        fresh = []
        for child in getattr(node, "inputs", ()):
            if child is not None and id(child) not in index:
                index[id(child)] = len(order)
                order.append(child)
                fresh.append(child)
        stack.extend(reversed(fresh))
    return order, index


def trace_graph(tensor: Tensor, names: TensorsArg | None = None) -> GraphReport:
    """Walk the graph behind ``tensor`` once and report on it (see :class:`GraphReport`).

    Args:
        tensor: the output (usually a loss) whose graph to inspect; a leaf that
            requires grad gives a one-node graph, a tensor outside any graph an empty one.
        names: optional names for the leaves (``dict(model.named_parameters())`` or
            its pairs), used in records, summaries and DOT labels.

    Raises:
        TypeError: ``tensor`` is not a Tensor.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"trace_graph: expected a Tensor, got {type(tensor).__name__}")
    by_id = _names_by_id(names, "trace_graph") if names is not None else {}
    root = tensor.grad_fn or tensor._acc
    if root is None:
        return GraphReport(0, 0, Counter(), [], 0, 0, tensor.shape, tensor.dtype)
    order, index = _walk(root)
    n = len(order)
    # output shape/dtype of a node = what its consumers received at that input
    out_shape: list[Shape | None] = [None] * n
    out_dtype: list[np.dtype[Any] | None] = [None] * n
    out_shape[0], out_dtype[0] = tensor.shape, tensor.dtype
    indegree = [0] * n
    edges = 0
    input_ids: list[tuple[int | None, ...]] = []
    for node in order:
        ids: list[int | None] = []
        shapes = getattr(node, "shapes", ())
        dtypes = getattr(node, "dtypes", ())
        for i, child in enumerate(getattr(node, "inputs", ())):
            if child is None:
                ids.append(None)
                continue
            j = index[id(child)]
            ids.append(j)
            indegree[j] += 1
            edges += 1
            if out_shape[j] is None and i < len(shapes):
                out_shape[j] = shapes[i]
                out_dtype[j] = dtypes[i] if i < len(dtypes) else None
        input_ids.append(tuple(ids))
    # longest path, in a topological order (Kahn's algorithm)
    longest = [1] * n
    ready = [j for j in range(n) if indegree[j] == 0]
    while ready:
        j = ready.pop()
        for c in input_ids[j]:
            if c is None:
                continue
            if longest[j] + 1 > longest[c]:
                longest[c] = longest[j] + 1
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    records: list[NodeRecord] = []
    every: list[tuple[int, int]] = []
    leaves: list[tuple[int, weakref.ref[Tensor]]] = []
    leaf_extents: list[tuple[int, int]] = []
    keep: list[Array] = []  # scalars' temporary arrays: their addresses must stay unique
    for j, node in enumerate(order):
        arrays = _saved_arrays(node)
        keep.extend(arrays)
        extents = _extents(arrays)
        every.extend(extents)
        leaf_name = None
        shape, dtype = out_shape[j], out_dtype[j]
        if node.is_accumulator:
            leaf = getattr(node, "variable", None)
            if isinstance(leaf, Tensor):
                leaves.append((j, weakref.ref(leaf)))
                leaf_extents.extend(_extents([leaf.data]))
                leaf_name = by_id.get(id(leaf))
                shape, dtype = leaf.shape, leaf.dtype
        records.append(
            NodeRecord(
                index=j,
                name=node.name(),
                id=id(node),
                inputs=input_ids[j],
                input_shapes=tuple(getattr(node, "shapes", ())),
                input_dtypes=tuple(getattr(node, "dtypes", ())),
                shape=shape,
                dtype=dtype,
                saved_bytes=_union_bytes(list(extents)),
                saved_arrays=len(extents),
                freed=bool(getattr(node, "_saved_slots", ()))
                and getattr(node, "_saved_versions", ()) is None,
                is_leaf=bool(node.is_accumulator),
                leaf_name=leaf_name,
                created_at=_created_at(node),
            )
        )
    return GraphReport(
        node_count=n,
        depth=max(longest),
        op_names=Counter(r.name for r in records),
        nodes=records,
        saved_bytes=_union_bytes(list(every)),
        saved_activation_bytes=_union_bytes(list(every)) - _overlap_bytes(every, leaf_extents),
        edge_count=edges,
        root_shape=tensor.shape,
        root_dtype=tensor.dtype,
        _leaves=leaves,
    )


# ---- DOT -----------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A DOT double-quoted string (a newline becomes DOT's line break)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(report: GraphReport, name: str) -> str:
    lines = [
        f"digraph {_quote(name)} {{",
        "  rankdir=BT;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    for r in report.nodes:
        shape = "?" if r.shape is None else cops.fmt_shape(r.shape)
        if r.is_leaf:
            title = r.leaf_name or "AccumulateGrad"
            label = f"{title}\n{shape} {r.dtype}"
            attrs = "shape=ellipse, style=filled, fillcolor=lightblue"
        else:
            saved = "freed" if r.freed else f"saved {format_bytes(r.saved_bytes)}"
            label = f"{r.name}\n{shape}\n{saved}"
            attrs = "shape=box"
            if r.created_at:
                attrs += f", tooltip={_quote(r.created_at)}"
        lines.append(f"  n{r.index} [label={_quote(label)}, {attrs}];")
    if report.nodes:
        out = f"output\n{cops.fmt_shape(report.root_shape)} {report.root_dtype}"
        lines.append(f"  out [label={_quote(out)}, shape=plaintext];")
        lines.append("  n0 -> out;")
    for r in report.nodes:
        for c in r.inputs:
            if c is not None:
                lines.append(f"  n{c} -> n{r.index};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(tensor: Tensor, names: TensorsArg | None = None, name: str = "graph") -> str:
    """The graph behind ``tensor`` as Graphviz DOT text: ``trace_graph(tensor).to_dot()``.

    Render it with ``dot -Tpng graph.dot -o graph.png`` (Graphviz is not needed to
    produce the text).

    Args:
        tensor: the output whose graph to draw.
        names: optional leaf names, as for :func:`trace_graph`.
        name: the DOT graph's name.
    """
    return trace_graph(tensor, names).to_dot(name)


# ---- explain ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExplainEntry:
    """Whether one tensor gets a gradient from the output, and if not, why.

    Attributes:
        name: the caller's name for the tensor (or ``tensors[i]``).
        reached: whether the output's graph reaches it (it gets a gradient).
        reason: why not (empty when reached).
        where: the place: the node that consumes it, or where its path is cut.
    """

    name: str
    reached: bool
    reason: str
    where: str


@dataclass(frozen=True)
class ExplainReport:
    """One :class:`ExplainEntry` per tensor passed to :func:`explain`, in order."""

    entries: tuple[ExplainEntry, ...]

    @property
    def unreached(self) -> list[ExplainEntry]:
        """The entries of the tensors that get no gradient."""
        return [e for e in self.entries if not e.reached]

    def __getitem__(self, name: str) -> ExplainEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"explain: no tensor named {name!r}")

    def __iter__(self) -> Iterator[ExplainEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __str__(self) -> str:
        if not self.entries:
            return "explain: no tensors given"
        lines = []
        for e in self.entries:
            if e.reached:
                lines.append(f"{e.name}: gets a gradient ({e.where})")
            else:
                lines.append(f"{e.name}: NO gradient: {e.reason}\n    where: {e.where}")
        return "\n".join(lines)


@dataclass
class _Graph:
    """What explain() needs to know about the output's graph (holds the nodes)."""

    nodes: list[Node]
    index: dict[int, int]
    consumer: dict[int, tuple[int, int]]  # id(node) -> (consumer index, input position)
    counters: dict[int, tuple[int, int]]  # id(version counter) -> (node index, position)
    saved: list[tuple[int, Array]]  # (node index, array it saved)
    cuts: list[tuple[int, int, Shape, np.dtype[Any]]]  # inputs without grad
    lo: int = -1  # the smallest and largest sequence numbers of the graph's op nodes
    hi: int = -1

    def place(self, j: int, pos: int) -> str:
        node = self.nodes[j]
        text = (
            f"input {pos} of {node.name()} (node {j})" if pos >= 0 else f"{node.name()} (node {j})"
        )
        site = _created_at(node)
        return f"{text}, created at {site}" if site else text


def _graph_of(output: Tensor) -> _Graph | None:
    root = output.grad_fn or output._acc
    if root is None:
        return None
    order, index = _walk(root)
    g = _Graph(order, index, {}, {}, [], [])
    seqs = [n.seq for n in order if not n.is_accumulator]
    if seqs:
        g.lo, g.hi = min(seqs), max(seqs)
    for j, node in enumerate(order):
        shapes = getattr(node, "shapes", ())
        dtypes = getattr(node, "dtypes", ())
        for pos, child in enumerate(getattr(node, "inputs", ())):
            if child is None:
                if pos < len(shapes) and pos < len(dtypes):
                    g.cuts.append((j, pos, shapes[pos], dtypes[pos]))
            elif id(child) not in g.consumer:
                g.consumer[id(child)] = (j, pos)
        saves = getattr(type(node), "saves", ())
        for k, (counter, _value) in enumerate(getattr(node, "_saved_versions", None) or ()):
            pos = saves[k] if k < len(saves) else -1
            g.counters.setdefault(id(counter), (j, pos))
        for a in _saved_arrays(node):
            g.saved.append((j, a))
    return g


_NO_PATH = (
    "never used in the forward: no op took it on the way to this output, with or without "
    "grad (no no_grad()/inference_mode() use, detach() or NumPy conversion of it either); "
    "a layer or parameter that the forward does not call?"
)

_CUT_REASONS = {
    "no_grad": "used under no_grad(): {op} ran on it with grad mode off, so its result "
    "carries no gradient back",
    "inference_mode": "used under inference_mode(): {op} ran on it without recording, so "
    "its result carries no gradient back",
    "no_gradient_op": "an op without gradient ({op}: a comparison, an integer cast) took "
    "it and cut the path",
    "numpy": "converted to NumPy ({op}): what came back is a new tensor without a path to "
    "it; gradients cannot flow through NumPy, use tensor ops",
}


def _cut_of(t: Tensor, g: _Graph) -> Cut | None:
    """The note of the last use of ``t`` without a node, if it can explain this graph (one
    made after the output was computed cannot).
    """
    cut: Cut | None = getattr(t, "_cut", None)
    if cut is None or (g.hi >= 0 and cut[0] > g.hi):
        return None
    return cut


def _cut_place(cut: Cut, g: _Graph) -> str:
    seq, kind, op, shape, dtype, site = cut
    what = f"{op} (a {cops.fmt_shape(shape)} {dtype} result)" if kind != "detach" else op
    if g.lo <= seq <= g.hi:
        when = "while this output's graph was being built"
    else:
        when = "before this output's graph began"
        for j, pos, s, d in g.cuts:
            if s == shape and d == dtype:
                when += f"; a {cops.fmt_shape(s)} {d} tensor without gradient enters it at "
                when += g.place(j, pos)
                break
    text = f"{what}, {when}"
    return f"{text}; called at {site}" if site else text


def _explain_cut(name: str, cut: Cut, g: _Graph) -> ExplainEntry:
    reason = _CUT_REASONS[cut[1]].format(op=cut[2])
    if not g.lo <= cut[0] <= g.hi:
        reason += (
            " (before this output's graph began: earlier in this forward, or in an earlier "
            "pass such as an evaluation)"
        )
    return ExplainEntry(name, False, reason, _cut_place(cut, g))


def _explain_one(name: str, t: Tensor, output: Tensor, g: _Graph | None) -> ExplainEntry:
    node = t.grad_fn or t._acc
    if g is not None and node is not None and id(node) in g.index:
        if node is (output.grad_fn or output._acc):
            return ExplainEntry(name, True, "", "it is the output itself")
        j, pos = g.consumer[id(node)]
        where = g.place(j, pos)
        if t.grad_fn is not None:
            where += (
                "; a non-leaf: the gradient passes through it, but its .grad stays None "
                "(as in PyTorch); read it with grad() or register_hook()"
            )
        return ExplainEntry(name, True, "", where)
    dt = t.dtype
    shape = cops.fmt_shape(t.shape)
    if dt.kind != "f":
        where = "the tensor itself"
        if g is not None:
            for j, pos, s, d in g.cuts:
                if s == t.shape and d == dt:
                    where = f"{g.place(j, pos)} takes a {shape} {dt} tensor without gradient"
                    break
        return ExplainEntry(
            name,
            False,
            f"it is an integer/bool tensor (dtype {dt}): only float tensors have gradients; "
            "ops without a gradient (comparisons, argmax, integer ops, casts to int) "
            "produce such tensors",
            where,
        )
    if g is None:
        if not t._rg:
            return ExplainEntry(
                name,
                False,
                "requires_grad=False: set requires_grad=True (or make it an nn.Parameter)",
                "the tensor itself",
            )
        od = output.dtype
        if od.kind != "f":
            reason = (
                f"the output is an integer/bool tensor (dtype {od}): it was made by an op "
                "without gradient (a comparison, argmax, an integer op)"
            )
        else:
            mode = "grad mode is off right now" if not is_grad_enabled() else "grad mode is on now"
            reason = (
                "the output has no graph (output.grad_fn is None): it was computed under "
                "no_grad()/inference_mode(), or only from tensors that do not require grad "
                f"(detached, or copies through NumPy); {mode}"
            )
        return ExplainEntry(name, False, reason, "the output")
    if not t._rg:
        where = "the tensor itself (a tensor that does not require grad)"
        for j, pos, s, d in g.cuts:
            if s == t.shape and d == dt:
                where = f"{g.place(j, pos)} takes a {shape} tensor without gradient"
                break
        return ExplainEntry(
            name,
            False,
            "requires_grad=False: set requires_grad=True (or make it an nn.Parameter)",
            where,
        )
    # it requires grad but the graph does not reach it: look for its data in the graph
    counter = t._version
    if counter is not None and id(counter) in g.counters:
        j, pos = g.counters[id(counter)]
        return ExplainEntry(
            name,
            False,
            "detached: the graph uses a tensor sharing its data and version counter "
            "(made by .detach()), which carries no gradient back; use the tensor itself",
            g.place(j, pos),
        )
    cut = _cut_of(t, g)
    if cut is not None and cut[1] == "detach":
        return ExplainEntry(
            name,
            False,
            "detached: .detach() made a tensor sharing its data outside the graph, and the "
            "graph's path goes through that copy, which carries no gradient back; use the "
            "tensor itself",
            _cut_place(cut, g),
        )
    data = t.data
    if data.size:
        for j, a in g.saved:
            if np.may_share_memory(a, data):
                return ExplainEntry(
                    name,
                    False,
                    "its memory is used by the graph through a tensor outside it (a new "
                    "tensor around .numpy() or the array without a copy): gradients "
                    "cannot flow through NumPy; use the tensor itself",
                    f"an array saved by {g.nodes[j].name()} (node {j})",
                )
        # a constant tensor (zeros, ones) matches too many arrays to tell anything
        varied = data.size > 1 and not bool(np.all(data == data.flat[0]))
        for j, a in g.saved if varied else ():
            if a.shape == data.shape and a.dtype == dt and np.array_equal(a, data):
                return ExplainEntry(
                    name,
                    False,
                    "a copy of its values is in the graph, not the tensor: a round trip "
                    "through NumPy (.numpy()/np.asarray, then tensor(...)) or a copy made "
                    "under no_grad(); gradients cannot flow through NumPy",
                    f"an array saved by {g.nodes[j].name()} (node {j})",
                )
    if cut is not None and cut[1] != "no_gradient_op":
        return _explain_cut(name, cut, g)
    for j, a in g.saved:
        if a.shape == t.shape and a.dtype.kind in "biu":
            return ExplainEntry(
                name,
                False,
                f"a {cops.fmt_shape(a.shape)} {a.dtype} array of its shape is in the graph: "
                "most likely an op without gradient (comparison, argmax, integer op) made "
                "it from this tensor and cut the path (else: never used)",
                f"an array saved by {g.nodes[j].name()} (node {j})",
            )
    for j, pos, s, d in g.cuts:
        if s == t.shape and d.kind in "biu":
            return ExplainEntry(
                name,
                False,
                f"a {cops.fmt_shape(s)} {d} tensor enters the graph there: an op without "
                "gradient (comparison, argmax, integer op) cut the path",
                g.place(j, pos),
            )
    if cut is not None:
        return _explain_cut(name, cut, g)
    where = f"nowhere: none of the graph's {len(g.nodes)} nodes takes it"
    floats = [(j, pos, s) for j, pos, s, d in g.cuts if d.kind == "f"]
    if floats:
        # if it was used, its path was cut before one of these (the batch enters there too)
        shown = [f"{g.place(j, pos)} ({cops.fmt_shape(s)})" for j, pos, s in floats[:3]]
        more = f" and {len(floats) - 3} more" if len(floats) > 3 else ""
        where += "; tensors without gradient enter at " + ", ".join(shown) + more
    return ExplainEntry(name, False, _NO_PATH, where)


def explain(output: Tensor, tensors: TensorsArg) -> ExplainReport:
    """For each tensor, whether ``output``'s backward reaches it, and if not, why and where.

    Reasons told apart: ``requires_grad=False``; an integer/bool tensor; detached
    (``.detach()``: a tensor sharing its version counter is in the graph); its memory
    or a copy of its values in the graph (a NumPy round trip); a cut by an op without
    gradient; an output computed under ``no_grad()``/``inference_mode()``; never used.
    Without recorded provenance these are inferred from what the graph holds (saved
    arrays, version counters, inputs without grad), so "never used" also covers a path
    cut before any node saved its data.

    Args:
        output: the tensor ``backward()`` would start from (e.g. the loss).
        tensors: a Tensor, a sequence of Tensors, a mapping name -> Tensor, or
            ``(name, Tensor)`` pairs such as ``model.named_parameters()``.

    Raises:
        TypeError: ``output`` or one of ``tensors`` is not a Tensor.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"explain: output must be a Tensor, got {type(output).__name__}")
    pairs = _named(tensors, "explain")
    g = _graph_of(output)
    return ExplainReport(tuple(_explain_one(n, t, output, g) for n, t in pairs))
