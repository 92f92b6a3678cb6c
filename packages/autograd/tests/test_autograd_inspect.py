"""Graph inspection: trace_graph (memory report), to_dot, gradient flow summary, explain."""

from __future__ import annotations

import gc
import re
import shutil
import subprocess
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradwise.autograd as ag
from gradwise.autograd import Tensor
from gradwise.autograd.inspect import GraphReport, format_bytes


def _leaf(*shape: int, dtype: str = "float32", seed: int = 0) -> Tensor:
    rng = np.random.default_rng(seed)
    return ag.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)


# ---- trace_graph ---------------------------------------------------------------------


def test_trace_counts_depth_names_and_shapes() -> None:
    x, w = _leaf(3, 4), _leaf(4, 2, seed=1)
    y = ((x @ w).relu() * 2.0).sum()
    r = ag.trace_graph(y, names={"x": x, "w": w})
    assert isinstance(r, GraphReport)
    # Sum <- Mul <- ReLU <- MatMul <- {x, w}
    assert r.node_count == 6
    assert r.edge_count == 5
    assert r.depth == 5
    assert r.op_names == {
        "SumBackward": 1,
        "MulBackward": 1,
        "ReLUBackward": 1,
        "MatMulBackward": 1,
        "AccumulateGrad": 2,
    }
    root = r.nodes[0]
    assert root.name == "SumBackward" and root.shape == () and root.dtype == np.float32
    assert root.inputs == (1,)
    mm = next(n for n in r.nodes if n.name == "MatMulBackward")
    assert mm.shape == (3, 2)
    assert mm.input_shapes == ((3, 4), (4, 2))
    leaves = r.leaves
    assert [lf.leaf_name for lf in leaves] == ["x", "w"]  # inputs in order
    assert [lf.shape for lf in leaves] == [(3, 4), (4, 2)]
    assert mm.inputs == tuple(lf.index for lf in leaves)
    assert y.grad_fn is not None and root.id == id(y.grad_fn)


def test_saved_bytes_per_node_and_total() -> None:
    x, w = _leaf(3, 4), _leaf(4, 2, seed=1)
    h = x @ w  # saves x (48 B) and w (32 B)
    y = (h * h).sum()  # saves h twice: 24 B once for the node
    r = ag.trace_graph(y)
    by = {n.name: n for n in r.nodes}
    assert by["MatMulBackward"].saved_bytes == x.data.nbytes + w.data.nbytes == 80
    assert by["MatMulBackward"].saved_arrays == 2
    assert by["MulBackward"].saved_arrays == 2
    assert by["MulBackward"].saved_bytes == h.data.nbytes == 24
    assert by["SumBackward"].saved_bytes == 0
    assert r.saved_bytes == 104
    assert r.saved_bytes_by_op["MulBackward"] == 24
    assert sum(r.saved_bytes_by_node) == 104


def test_memory_shared_by_nodes_counted_once_in_total() -> None:
    x, a, b = _leaf(10, 10), _leaf(10, 10, seed=1), _leaf(10, 10, seed=2)
    y = (x * a + x * b).sum()  # two Mul nodes both save x
    r = ag.trace_graph(y)
    muls = [n for n in r.nodes if n.name == "MulBackward"]
    assert [m.saved_bytes for m in muls] == [800, 800]
    assert r.saved_bytes == 3 * 400  # x, a, b once each
    assert sum(r.saved_bytes_by_node) == 1600


def test_saved_bytes_of_a_view_count_its_own_extent() -> None:
    x = _leaf(100, 10)
    y = (x[:10] * 2.0).sum()  # GetItem (a view) -> Mul saves the view and a 0-d scalar
    r = ag.trace_graph(y)
    mul = next(n for n in r.nodes if n.name == "MulBackward")
    assert mul.saved_bytes == 10 * 10 * 4 + 4


def test_saved_bytes_of_non_contiguous_views() -> None:
    x = _leaf(4, 3)
    r = ag.trace_graph((x.T * 2.0).sum())  # an F-ordered view: all of x's 48 bytes
    assert next(n for n in r.nodes if n.name == "MulBackward").saved_bytes == 48 + 4
    r = ag.trace_graph((x * x.T.T).sum())  # x and a view of all of x: one extent
    assert next(n for n in r.nodes if n.name == "MulBackward").saved_bytes == 48
    assert r.saved_activation_bytes == 0


def test_float64_saved_bytes() -> None:
    x = _leaf(5, dtype="float64")
    r = ag.trace_graph((x * x).sum())
    assert r.saved_bytes == 40
    assert r.nodes[0].dtype == np.float64


def test_saved_bytes_zero_after_backward_and_freed_flag() -> None:
    x = _leaf(4)
    y = (x.exp() * x).sum()
    before = ag.trace_graph(y)
    assert before.saved_bytes > 0
    assert not any(n.freed for n in before.nodes)
    y.backward()
    after = ag.trace_graph(y)
    assert after.saved_bytes == 0
    assert after.node_count == before.node_count
    assert {n.name for n in after.nodes if n.freed} == {"MulBackward", "ExpBackward"}


def test_depth_is_the_longest_path_in_a_diamond() -> None:
    x = _leaf(3)
    a = x * 2.0
    b = a.exp().log().tanh()  # a long branch
    y = (a + b).sum()
    r = ag.trace_graph(y)
    # Sum <- Add <- Tanh <- Log <- Exp <- Mul <- AccumulateGrad
    assert r.depth == 7
    assert r.node_count == 7
    assert r.op_names["MulBackward"] == 1  # reached twice, listed once


def test_a_node_used_twice_is_one_node_with_two_edges() -> None:
    x = _leaf(3)
    r = ag.trace_graph((x * x).sum())
    assert r.node_count == 3
    assert r.edge_count == 3
    assert r.nodes[1].inputs == (2, 2)


def test_chain_of_100000_nodes_no_recursion() -> None:
    x = _leaf(1)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    t0 = time.perf_counter()
    r = ag.trace_graph(y)
    elapsed = time.perf_counter() - t0
    assert r.node_count == 100_001
    assert r.depth == 100_001
    assert r.op_names["MulBackward"] == 100_000
    assert r.saved_bytes > 0
    assert elapsed < 10.0
    dot = r.to_dot()
    assert dot.count(" -> ") == 100_001  # 100,000 edges + root -> output
    del y, r, dot


@settings(deadline=None, max_examples=20)
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple),
    n=st.integers(1, 30),
)
def test_property_chain_counts_and_bytes(shape: tuple[int, ...], n: int) -> None:
    x = ag.zeros(shape, requires_grad=True)
    y = x
    for _ in range(n):
        y = y.tanh()  # each Tanh saves its own output
    r = ag.trace_graph(y)
    assert r.node_count == n + 1
    assert r.depth == n + 1
    assert r.edge_count == n
    assert r.saved_bytes == n * x.data.nbytes
    assert all(node.shape == shape for node in r.nodes)


def test_trace_leaf_and_no_graph() -> None:
    x = _leaf(2, 2)
    r = ag.trace_graph(x)
    assert r.node_count == 1 and r.depth == 1 and r.op_names == {"AccumulateGrad": 1}
    c = ag.tensor([1.0, 2.0])
    empty = ag.trace_graph(c)
    assert empty.node_count == 0 and empty.depth == 0 and empty.nodes == []
    assert "0 nodes" in str(empty)
    with ag.no_grad():
        z = x * 2.0
    assert ag.trace_graph(z).node_count == 0


def test_trace_errors() -> None:
    with pytest.raises(TypeError, match="trace_graph: expected a Tensor, got ndarray"):
        ag.trace_graph(np.zeros(3))  # type: ignore[arg-type]
    x = _leaf(2)
    with pytest.raises(TypeError, match="trace_graph: 'w' is a list, not a Tensor"):
        ag.trace_graph(x, names={"w": [1, 2]})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="trace_graph: expected Tensors"):
        ag.trace_graph(x, names=[3])  # type: ignore[arg-type]


def test_report_does_not_keep_the_graph_alive() -> None:
    x = _leaf(1000)
    y = (x.exp() * 2.0).sum()
    r = ag.trace_graph(y)
    node = y.grad_fn
    assert node is not None
    ref = weakref.ref(node)
    del node, y
    gc.collect()
    assert ref() is None
    assert r.saved_bytes == 1000 * 4 + 4  # the records stay readable
    assert r.node_count == 4


def test_summary_and_memory_report_text() -> None:
    x, w = _leaf(8, 16), _leaf(16, 4, seed=1)
    y = (x @ w).relu().sum()
    r = ag.trace_graph(y)
    text = str(r)
    assert text == r.summary()
    assert "5 nodes (2 leaves)" in text
    assert "depth 4" in text
    assert re.search(r"MatMulBackward\s+1\s+768 B", text)
    mem = r.memory_report(top=1)
    assert "saved for backward: 896 B in total" in mem
    assert re.search(r"MatMulBackward\s+\(8, 4\)\s+2\s+768 B", mem)
    assert "(2 more nodes)" in mem


def test_format_bytes() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**2) == "3.0 MiB"
    assert format_bytes(5 * 1024**4) == "5120.0 GiB"


# ---- gradient flow summary -----------------------------------------------------------


def test_gradient_flow_summary_norms_zeros_nonfinite() -> None:
    x = ag.tensor(np.array([-1.0, 0.5, 2.0, -3.0], np.float32), requires_grad=True)
    w = ag.tensor(np.array([1.0, 2.0, 3.0, 4.0], np.float32), requires_grad=True)
    s = ag.tensor(np.array([0.0, 4.0], np.float32), requires_grad=True)
    unused_grad = _leaf(3)
    y = (x.relu() * w).sum() + s.sqrt().sum()
    r = ag.trace_graph(y)
    before = r.gradient_flow_summary(names={"x": x, "w": w, "s": s})
    assert sorted(before.missing) == ["s", "w", "x"]
    assert "no gradient: " in str(before)
    y.backward()
    summary = r.gradient_flow_summary(names=[("x", x), ("w", w), ("s", s), ("u", unused_grad)])
    assert sorted(e.name for e in summary.leaves) == ["s", "w", "x"]
    gx = np.array([0.0, 2.0, 3.0, 0.0])  # relu'(x) * w
    assert summary["x"].norm == pytest.approx(float(np.linalg.norm(gx)))
    assert summary["x"].zeros == 2
    assert summary["w"].zeros == 2  # relu(x) is 0 twice
    assert summary["s"].nonfinite == 1  # d sqrt(s)/ds at 0 is inf
    assert summary["s"].norm == float("inf")
    assert summary.nonfinite == ["s"]
    assert summary.missing == []
    text = str(summary)
    assert re.search(r"x\s+\(4,\)\s+3\.606\s+2/4\s+0", text)
    assert "non-finite gradient: s" in text
    with pytest.raises(KeyError, match="no leaf named 'q'"):
        summary["q"]


def test_gradient_flow_summary_default_names_and_dead_leaves() -> None:
    x, w = _leaf(3), _leaf(3, seed=1)
    y = (x * w).sum()
    r = ag.trace_graph(y)
    y.backward()
    s = r.gradient_flow_summary()
    assert [e.name for e in s.leaves] == ["leaf 0", "leaf 1"]
    assert s["leaf 0"].norm == pytest.approx(float(np.linalg.norm(w.data.astype(np.float64))))
    del x
    gc.collect()
    assert [e.name for e in r.gradient_flow_summary().leaves] == ["leaf 1"]


# ---- DOT -------------------------------------------------------------------------------

_NODE = re.compile(r'^  (n\d+|out) \[label="((?:[^"\\]|\\.)*)", ([^\]]*)\];$')
_EDGE = re.compile(r"^  (n\d+) -> (n\d+|out);$")


def _parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    lines = text.rstrip("\n").split("\n")
    assert re.fullmatch(r'digraph "[^"]*" \{', lines[0])
    assert lines[-1] == "}"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[1:-1]:
        if m := _NODE.match(line):
            assert m.group(1) not in nodes
            nodes[m.group(1)] = m.group(2)
        elif m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert line in ("  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];'), line
    return nodes, edges


def test_to_dot_structure_labels_and_edges() -> None:
    x, w = _leaf(3, 4), _leaf(4, 2, seed=1)
    y = (x @ w).sum()
    text = ag.to_dot(y, names={'weight "w"': w})
    nodes, edges = _parse_dot(text)
    assert set(nodes) == {"n0", "n1", "n2", "n3", "out"}
    assert nodes["n0"] == "SumBackward\\n()\\nsaved 0 B"
    assert nodes["n1"] == "MatMulBackward\\n(3, 2)\\nsaved 80 B"
    assert nodes["n2"] == "AccumulateGrad\\n(3, 4) float32"
    assert nodes["n3"] == 'weight \\"w\\"\\n(4, 2) float32'  # quotes escaped
    assert sorted(edges) == [("n0", "out"), ("n1", "n0"), ("n2", "n1"), ("n3", "n1")]
    assert "shape=ellipse" in text and "shape=box" in text
    assert text == ag.trace_graph(y, names={'weight "w"': w}).to_dot()
    y.backward()
    assert "freed" in ag.to_dot(y)  # MatMul released its arrays


def test_to_dot_of_a_tensor_without_graph() -> None:
    nodes, edges = _parse_dot(ag.to_dot(ag.tensor([1.0]), name="empty"))
    assert nodes == {} and edges == []


def test_to_dot_renders_with_graphviz(tmp_path: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz's dot is not installed")
    x = _leaf(3, 4)
    src = tmp_path / "g.dot"
    src.write_text(ag.to_dot((x.exp() * x).sum()))
    out = tmp_path / "g.png"
    subprocess.run([dot, "-Tpng", str(src), "-o", str(out)], check=True, timeout=60)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- explain ---------------------------------------------------------------------------


def test_explain_reached_tensors_and_where() -> None:
    x, w = _leaf(3, 4), _leaf(4, 2, seed=1)
    h = x @ w
    y = h.relu().sum()
    rep = ag.explain(y, {"x": x, "w": w, "h": h, "y": y})
    assert all(e.reached for e in rep)
    assert len(rep) == 4
    assert rep["x"].where == "input 0 of MatMulBackward (node 2)"
    assert rep["w"].where == "input 1 of MatMulBackward (node 2)"
    assert rep["h"].where.startswith("input 0 of ReLUBackward (node 1); a non-leaf")
    assert rep["y"].where == "it is the output itself"
    assert rep.unreached == []
    assert "x: gets a gradient (input 0 of MatMulBackward (node 2))" in str(rep)


def test_explain_requires_grad_false() -> None:
    w = _leaf(4)
    c = ag.tensor(np.ones(4, np.float32))
    e = ag.explain((c * w).sum(), {"c": c})["c"]
    assert not e.reached
    assert e.reason.startswith("requires_grad=False")
    assert e.where == "input 0 of MulBackward (node 1) takes a (4,) tensor without gradient"


def test_explain_integer_tensor() -> None:
    w = _leaf(3)
    i = ag.tensor([1, 2, 3])
    e = ag.explain((w * i).sum(), [i]).entries[0]
    assert e.name == "tensors[0]"
    assert not e.reached
    assert "integer/bool tensor (dtype int64)" in e.reason


def test_explain_detached() -> None:
    x, w = _leaf(3), _leaf(3, seed=1)
    y = (x.detach() * w).sum()
    e = ag.explain(y, x)["tensor"]
    assert not e.reached
    assert e.reason.startswith("detached")
    assert ".detach()" in e.reason
    assert e.where == "input 0 of MulBackward (node 1)"


def test_explain_detached_intermediate() -> None:
    x, w = _leaf(3), _leaf(3, seed=1)
    h = x.exp()
    y = (h.detach() * w).sum()
    rep = ag.explain(y, {"h": h, "x": x, "w": w})
    assert rep["h"].reason.startswith("detached")
    assert not rep["x"].reached
    assert rep["w"].reached


def test_explain_numpy_round_trip() -> None:
    x, w = _leaf(3), _leaf(3, seed=1)
    y = (ag.tensor(np.asarray(x.numpy())) * w).sum()  # tensor() copies the values
    e = ag.explain(y, {"x": x})["x"]
    assert not e.reached
    assert "round trip through NumPy" in e.reason
    assert e.where == "an array saved by MulBackward (node 1)"


def test_explain_constant_unused_tensor_is_not_taken_for_a_copy() -> None:
    w = _leaf(3)
    z = ag.zeros(3, requires_grad=True)  # an unused bias initialised to zeros
    y = (w * ag.zeros(3)).sum()  # the graph saves a zeros array of the same shape
    e = ag.explain(y, {"z": z})["z"]
    assert "copy" not in e.reason and "never used" in e.reason
    nan = ag.explain(y, {"n": ag.full((3,), float("nan"), requires_grad=True)})
    assert "copy" not in nan["n"].reason and "never used" in nan["n"].reason


def test_explain_memory_shared_outside_the_graph() -> None:
    x, w = _leaf(3), _leaf(3, seed=1)
    y = (Tensor._wrap(x.numpy()) * w).sum()  # a new tensor around the same memory
    e = ag.explain(y, {"x": x})["x"]
    assert "its memory is used by the graph" in e.reason


def test_explain_no_grad_output() -> None:
    x = _leaf(3)
    with ag.no_grad():
        y = (x * 2.0).sum()
    e = ag.explain(y, {"x": x})["x"]
    assert not e.reached
    assert "the output has no graph" in e.reason
    assert "no_grad()" in e.reason and "grad mode is on now" in e.reason
    assert e.where == "the output"
    with ag.no_grad():
        assert "grad mode is off right now" in ag.explain(y, x).entries[0].reason
    with ag.inference_mode():
        z = x * 3.0
    assert "no_grad()/inference_mode()" in ag.explain(z, x).entries[0].reason


def test_explain_op_without_gradient() -> None:
    x, a = _leaf(4), _leaf(4, seed=1)
    y = ag.where(x > 0, a, 0.0).sum()  # the mask is a bool tensor: no gradient reaches x
    e = ag.explain(y, {"x": x, "a": a})
    assert e["a"].reached
    assert not e["x"].reached
    assert "op without gradient" in e["x"].reason
    assert e["x"].where == "an array saved by WhereBackward (node 1)"
    mask = x > 0
    out = (mask * 1.0).sum()  # an output with no graph made by a comparison
    assert not out.requires_grad
    assert "integer/bool" in ag.explain(mask, x).entries[0].reason


def test_explain_parameter_never_used() -> None:
    x, w, unused = _leaf(3), _leaf(3, seed=1), _leaf(5, seed=2)
    y = (x * w).sum()
    e = ag.explain(y, iter([("x", x), ("unused", unused)]))
    assert e["x"].reached
    assert not e["unused"].reached
    assert "never used in the forward" in e["unused"].reason
    assert e["unused"].where == "nowhere: none of the graph's 4 nodes takes it"
    text = str(e)
    assert "unused: NO gradient" in text and "where: nowhere" in text
    # a use under no_grad() after the output was computed does not explain it
    with ag.no_grad():
        unused * 2.0
    assert "never used in the forward" in ag.explain(y, {"u": unused})["u"].reason


def test_explain_layer_under_no_grad_before_the_graph() -> None:
    w = _leaf(3, seed=1)
    c = ag.tensor(np.ones((2, 3), np.float32))
    inner, never = _leaf(3, 3, seed=3), _leaf(3, 3, seed=4)
    with ag.no_grad():
        h = c @ inner  # a layer run under no_grad: its path is cut where h enters
    e = ag.explain((h * w).sum(), {"inner": inner, "never": never})
    assert e["inner"].reason.startswith("used under no_grad(): MatMul ran on it")
    assert e["inner"].where == (
        "MatMul (a (2, 3) float32 result), before this output's graph began; a (2, 3) "
        "float32 tensor without gradient enters it at input 0 of MulBackward (node 1)"
    )
    assert "never used in the forward" in e["never"].reason
    assert e["never"].where == (
        "nowhere: none of the graph's 3 nodes takes it; tensors without gradient enter at "
        "input 0 of MulBackward (node 1) ((2, 3))"
    )


def test_explain_no_grad_inside_the_forward() -> None:
    x, w, inner = _leaf(3), _leaf(3, seed=1), _leaf(3, seed=2)
    a = x * w
    with ag.no_grad():
        h = inner * 2.0
    e = ag.explain((a * h).sum(), {"inner": inner, "x": x})
    assert e["x"].reached
    assert e["inner"].reason.startswith("used under no_grad(): Mul ran on it")
    assert "before this output's graph" not in e["inner"].reason
    assert e["inner"].where == (
        "Mul (a (3,) float32 result), while this output's graph was being built"
    )


def test_explain_inference_mode_and_anomaly_site() -> None:
    x, w = _leaf(3), _leaf(3, seed=1)
    with ag.detect_anomaly(), ag.inference_mode():
        h = x.exp()
    e = ag.explain((h * w).sum(), {"x": x})["x"]
    assert e.reason.startswith("used under inference_mode(): Exp ran on it")
    assert "called at " in e.where and "test_autograd_inspect.py" in e.where


def test_explain_numpy_conversion_and_detach_without_saved_data() -> None:
    x, y = _leaf(3), _leaf(3, seed=1)
    back = ag.tensor(x.numpy() + 1.0)  # a new array: neither memory nor values match x
    e = ag.explain((back * y).sum(), {"x": x})["x"]
    assert e.reason.startswith("converted to NumPy (numpy)")
    d = y.detach() + 1.0  # Add saves nothing: only the note on y tells
    e2 = ag.explain((d + x).sum(), {"y": y})["y"]
    assert e2.reason.startswith("detached")
    assert e2.where.startswith("detach, before this output's graph began")


def test_explain_errors() -> None:
    x = _leaf(2)
    with pytest.raises(TypeError, match="explain: output must be a Tensor, got list"):
        ag.explain([x], x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"explain: expected Tensors.*got int at position 1"):
        ag.explain(x, [x, 3])  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="explain: no tensor named 'z'"):
        ag.explain(x.sum(), {"x": x})["z"]
    assert str(ag.explain(x, [])) == "explain: no tensors given"


# ---- more: activation bytes, creation sites, non-leaf note, random graphs -------------


def test_saved_activation_bytes_leave_out_parameters() -> None:
    w = _leaf(4, 3)
    x = ag.tensor(np.ones((8, 4), np.float32))
    h = (x @ w).tanh()  # MatMul saves x (128 B) and w (48 B); Tanh saves h (96 B)
    r = ag.trace_graph(h.sum())
    assert r.saved_bytes == 128 + 48 + 96
    assert r.saved_activation_bytes == 128 + 96
    assert "224 B of it not parameters' data" in r.summary()
    r2 = ag.trace_graph((w * w).sum())  # only the parameter is saved
    assert r2.saved_bytes == 48 and r2.saved_activation_bytes == 0


def test_creation_sites_under_anomaly_mode() -> None:
    x = _leaf(3)
    with ag.detect_anomaly():
        y = (x * 2.0).sum()  # the line recorded
    line = f"{Path(__file__).name}:"
    r = ag.trace_graph(y)
    mul = next(n for n in r.nodes if n.name == "MulBackward")
    assert mul.created_at is not None
    assert line in mul.created_at and "test_creation_sites_under_anomaly_mode" in mul.created_at
    assert "at " + mul.created_at in r.memory_report()
    assert f"tooltip={chr(34)}{mul.created_at}" in r.to_dot()
    e = ag.explain(y, {"x": x})["x"]
    assert e.where.startswith("input 0 of MulBackward (node 1), created at ")
    assert ag.trace_graph((x * 3.0).sum()).nodes[1].created_at is None  # mode off


def test_explain_reached_non_leaf_notes_its_grad_stays_none() -> None:
    x = _leaf(3)
    h = x.exp()
    e = ag.explain((h * 2.0).sum(), {"h": h, "x": x})
    assert e["h"].reached and "its .grad stays None" in e["h"].where
    assert e["x"].reached and "non-leaf" not in e["x"].where


_UNARY = ("exp", "tanh", "relu", "sigmoid")


@settings(deadline=None, max_examples=30)
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.integers(0, 50))))
def test_property_random_graphs_against_a_naive_walk(
    steps: list[tuple[int, int, int]],
) -> None:
    """Counts, depth, edges and saved bytes against a recursive reference on small DAGs."""
    leaves = [_leaf(2, 3, seed=i) for i in range(2)]
    pool: list[Tensor] = list(leaves)
    for kind, i, j in steps[:25]:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        if kind == 0:
            pool.append(a * b)
        elif kind == 1:
            pool.append(a + b)
        else:
            pool.append(getattr(a, _UNARY[(i + j) % 4])())
    out = pool[-1].sum()
    r = ag.trace_graph(out)
    root = out.grad_fn
    assert root is not None

    nodes: dict[int, object] = {}
    longest: dict[int, int] = {}
    edges = 0

    def visit(node: ag.Node) -> int:
        nonlocal edges
        if id(node) in longest:
            return longest[id(node)]
        nodes[id(node)] = node
        best = 0
        for child in node.inputs:
            if child is not None:
                edges += 1
                best = max(best, visit(child))
        longest[id(node)] = best + 1
        return best + 1

    depth = visit(root)
    assert r.node_count == len(nodes)
    assert r.depth == depth
    assert r.edge_count == edges
    assert {n.id for n in r.nodes} == set(nodes)
    # every saved array of these ops is its own allocation or a leaf: dedupe by address
    seen: dict[int, int] = {}
    for node in nodes.values():
        for slot in getattr(type(node), "_saved_slots", ()):
            arr = getattr(node, slot)
            if arr is not None:
                arr = np.asarray(arr)
                seen[arr.__array_interface__["data"][0]] = arr.nbytes
    assert r.saved_bytes == sum(seen.values())
