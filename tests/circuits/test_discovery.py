"""Circuit discovery: the edge-level forward against the hook layer, EAP against a slow reference,
EAP-IG(1) == EAP, every method on the hand-set induction model (AUROC against its true circuit),
ACDC recovering that circuit, faithfulness, and bad input."""

from __future__ import annotations

import logging

import pytest
import torch

import interp
import interp.tasks
from circuits.discovery import (
    ACDCConfig,
    CircuitData,
    ComputationalGraph,
    Edge,
    acdc,
    discover,
    edge_auroc,
    faithfulness,
    faithfulness_curve,
    handset,
    node_auroc,
    roc_curve,
)
from circuits.discovery.engine import forward
from circuits.discovery.evaluation import auroc_table, format_table, true_circuit
from circuits.graph import Circuit, Node
from interp.errors import InterpError
from tests import tiny_models

METHODS = {"eap": {}, "eap-ig": {"steps": 5}, "acdc": {}, "node": {}}


@pytest.fixture(scope="module")
def hand():
    return handset.load()


@pytest.fixture(scope="module")
def hand_data():
    return handset.induction_data(24, seed=0)


@pytest.fixture(scope="module")
def hand_scores(hand, hand_data):
    return {
        name: discover(hand, hand_data, name, ablation=handset.ABLATION, **kw) for name, kw in METHODS.items()
    }


@pytest.fixture(scope="module")
def tiny():
    """A random tiny GPT-2 in float64 (2 blocks, 4 heads), with random clean/corrupted tokens."""
    model = interp.HookedModel(tiny_models.make("gpt2").double())
    gen = torch.Generator().manual_seed(0)
    clean, corrupted = torch.randint(0, tiny_models.VOCAB, (2, 4, 8), generator=gen)
    data = CircuitData(
        clean, corrupted, metric=lambda logits: logits[:, -1, 3].mean() - logits[:, -1, 5].mean()
    )
    return model, data


# -- the graph and the edge-level forward -----------------------------------------------------------------
@pytest.mark.parametrize("separate_qkv", [False, True])
def test_graph_has_every_residual_edge_once(tiny, separate_qkv):
    model, _ = tiny
    graph = ComputationalGraph.build(model.cfg, separate_qkv)
    # sources: embed + 2 x (4 heads + MLP); each head input reads 1 + 5l sources, MLP l 5 + 5l, logits 11
    per_head = 3 if separate_qkv else 1
    assert len(graph.edges) == 4 * per_head * (1 + 6) + (5 + 10) + 11
    assert len(set(graph.edges)) == len(graph.edges)
    assert all(e.src.depth < e.dst.depth for e in graph.edges)
    assert graph.edges[graph.edge_index("embed->L0.H0" + (".q" if separate_qkv else ""))].src == Node.embed()
    mask = graph.mask([("L0.H1", "L1.H2")])
    assert int(mask.sum()) == per_head
    assert torch.equal(graph.dense(mask.float())[graph.edge_dst, graph.edge_src], mask.float())


def test_unpatched_forward_is_the_model_bitwise(tiny):
    model, data = tiny
    graph = ComputationalGraph.build(model.cfg)
    assert torch.equal(forward(model, graph, data.clean).logits, model(data.clean))
    assert model.hooks_installed() == 0


@pytest.mark.parametrize("separate_qkv", [False, True])
def test_patching_every_edge_gives_the_corrupted_run(tiny, separate_qkv):
    model, data = tiny
    graph = ComputationalGraph.build(model.cfg, separate_qkv)
    alt = forward(model, graph, data.corrupted, record=True).sources
    patched = forward(
        model, graph, data.clean, alt=alt, patch=graph.dense(torch.ones(len(graph.edges)))
    ).logits
    torch.testing.assert_close(patched, model(data.corrupted), atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "node, hook, heads", [("L0.H2", "blocks.0.attn.hook_z", (2,)), ("MLP0", "blocks.0.hook_mlp_out", None)]
)
def test_patching_a_nodes_outgoing_edges_is_interp_patch(tiny, node, hook, heads):
    """Cross-check with the hook layer: all edges out of a node == patching the node's output."""
    model, data = tiny
    graph = ComputationalGraph.build(model.cfg)
    alt = forward(model, graph, data.corrupted, record=True).sources
    outgoing = torch.tensor([e.src == Node.parse(node) for e in graph.edges]).double()
    ours = forward(model, graph, data.clean, alt=alt, patch=graph.dense(outgoing)).logits
    _, cache = model.run_with_cache(data.corrupted, names=[hook])
    ref = model.run_with_interventions(data.clean, [interp.Patch(hook, cache[hook], heads=heads)])
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=0)


def test_separate_qkv_edges_together_equal_the_head_edge(tiny):
    model, data = tiny
    merged, split = (
        ComputationalGraph.build(model.cfg),
        ComputationalGraph.build(model.cfg, separate_qkv=True),
    )
    alt = forward(model, merged, data.corrupted, record=True).sources
    a = forward(
        model, merged, data.clean, alt=alt, patch=merged.dense(merged.mask(["L0.H1->L1.H3"]).double())
    ).logits
    b = forward(
        model, split, data.clean, alt=alt, patch=split.dense(split.mask(["L0.H1->L1.H3"]).double())
    ).logits
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    c = forward(
        model, split, data.clean, alt=alt, patch=split.dense(split.mask(["L0.H1->L1.H3.k"]).double())
    ).logits
    assert not torch.allclose(a, c)


def test_hooks_are_removed_when_the_forward_fails(tiny):
    model, data = tiny
    graph = ComputationalGraph.build(model.cfg)
    bad_alt = torch.zeros(3, 1, 1, 1, dtype=torch.float64)  # too few sources
    with pytest.raises(RuntimeError):
        forward(model, graph, data.clean, alt=bad_alt, patch=graph.dense(torch.ones(len(graph.edges))))
    assert model.hooks_installed() == 0


# -- EAP against a slow reference, EAP-IG ------------------------------------------------------------------
@pytest.mark.parametrize("separate_qkv", [False, True])
def test_eap_equals_slow_one_step_attribution_patching(tiny, separate_qkv):
    """Reference: per edge, the derivative of metric(edge patched by t) at t = 0 by central finite
    differences (float64), using only patched forwards (no probes, no backward)."""
    model, data = tiny
    scores = discover(model, data, "eap", separate_qkv=separate_qkv)
    graph = scores.graph
    alt = forward(model, graph, data.corrupted, record=True).sources
    eps = 1e-4
    reference = []
    for i in range(len(graph.edges)):
        onehot = torch.zeros(len(graph.edges), dtype=torch.float64)
        onehot[i] = eps
        plus = data.metric(forward(model, graph, data.clean, alt=alt, patch=graph.dense(onehot)).logits)
        minus = data.metric(forward(model, graph, data.clean, alt=alt, patch=graph.dense(-onehot)).logits)
        reference.append(float((plus - minus).detach()) / (2 * eps))
    torch.testing.assert_close(
        scores.scores, torch.tensor(reference, dtype=torch.float64), atol=1e-7, rtol=1e-6
    )


@pytest.mark.parametrize("separate_qkv", [False, True])
def test_probe_gradients_with_one_block_rewired_match_finite_differences(tiny, separate_qkv):
    """A patched block is rewired and probed per head; an unpatched one is differentiated at its
    fused q|k|v output. Both give d metric / d patch weight = (alt_s - out_s) . g_d at a patched point."""
    model, data = tiny
    graph = ComputationalGraph.build(model.cfg, separate_qkv)
    alt = forward(model, graph, data.corrupted, record=True).sources
    rewired = "L0.H1->L1.H3" + (".k" if separate_qkv else "")
    base = 0.5 * graph.mask([rewired]).double()  # block 1's heads rewired, block 0's not
    run = forward(model, graph, data.clean, alt=alt, patch=graph.dense(base), probe=True, record=True)
    grads = run.grads(graph, data.metric(run.logits))  # [n_dests, batch, pos, d_model]
    dense = torch.einsum("sbpd,tbpd->ts", (alt - run.sources).detach(), grads)  # [n_dests, n_sources]
    estimate = dense[graph.edge_dst, graph.edge_src]
    eps = 1e-4
    names = ["embed->L0.H2", "embed->L1.H0", "L0.H3->L1.H3", "L0.H0->MLP0", "L1.H1->logits"]
    if separate_qkv:
        names = [n + ".v" if ".H" in n.split("->")[1] else n for n in names]
    for name in names:
        i = graph.edge_index(name)
        step = torch.zeros(len(graph.edges), dtype=torch.float64)
        step[i] = eps
        plus, minus = (
            data.metric(forward(model, graph, data.clean, alt=alt, patch=graph.dense(base + s)).logits)
            for s in (step, -step)
        )
        reference = float((plus - minus).detach()) / (2 * eps)
        assert float(estimate[i]) == pytest.approx(reference, rel=1e-5, abs=1e-8), name


def test_gradient_methods_work_on_a_frozen_model(hand_data, hand_scores):
    frozen = handset.load()
    frozen.hf_model.requires_grad_(False)
    for method, options in (("eap", {}), ("eap-ig", {"steps": 5})):
        scores = discover(frozen, hand_data, method, ablation=handset.ABLATION, **options)
        torch.testing.assert_close(scores.scores, hand_scores[method].scores)


def test_eap_ig_reports_the_clean_metric(hand_scores):
    assert hand_scores["eap-ig"].metadata["clean_metric"] == pytest.approx(
        hand_scores["eap"].metadata["clean_metric"], rel=1e-6
    )


def test_eap_ig_with_one_step_is_eap(hand, hand_data):
    eap = discover(hand, hand_data, "eap", ablation="resample")
    ig1 = discover(hand, hand_data, "eap-ig", steps=1, ablation="resample")
    assert torch.equal(eap.scores, ig1.scores)


def test_node_attribution_is_the_sum_of_outgoing_eap_scores(hand, hand_data, hand_scores):
    eap, node = hand_scores["eap"], hand_scores["node"]
    for source in eap.graph.sources:
        total = sum(s for e, s in eap.as_dict().items() if e.src == source)
        assert node.node_scores[source] == pytest.approx(total, rel=1e-4, abs=1e-5)


# -- ground truth: the hand-set induction model ------------------------------------------------------------
def test_handset_model_does_induction(hand, hand_data):
    batch = interp.tasks.get("induction", length=handset.LENGTH).generate(64, seed=1)
    assert batch.metrics(hand(batch.clean))["accuracy"] == 1.0
    assert handset.TRUE_CIRCUIT.edge_pairs() == {Edge.of(*e).pair for e in handset.TRUE_EDGES}


@pytest.mark.parametrize("method", ["eap", "eap-ig", "acdc"])
def test_edge_methods_rank_the_true_edges_first(hand_scores, method):
    scores = hand_scores[method]
    assert edge_auroc(scores, handset.TRUE_CIRCUIT) == 1.0
    assert node_auroc(scores, handset.TRUE_CIRCUIT) == 1.0
    top = {e.pair for e, _ in scores.top(len(handset.TRUE_EDGES))}
    assert top == handset.TRUE_CIRCUIT.edge_pairs()


def test_node_attribution_ranks_true_nodes_first_but_not_edges(hand_scores):
    """A node method scores nodes; its derived edge scores cannot separate L1.H0->MLP1 (true) from
    L1.H0->logits (false): both join two important nodes. So node AUROC is 1 and edge AUROC is not."""
    scores = hand_scores["node"]
    assert node_auroc(scores, handset.TRUE_CIRCUIT) == 1.0
    assert 0.7 < edge_auroc(scores, handset.TRUE_CIRCUIT) < 1.0


def test_qkv_edges_rank_the_true_qkv_edges_first(hand, hand_data):
    scores = discover(hand, hand_data, "eap", ablation="resample", separate_qkv=True)
    universe = dict(scores.as_dict())
    truth = set(handset.TRUE_QKV_EDGES)
    true_scores = [abs(universe[e]) for e in truth]
    other_scores = [abs(s) for e, s in universe.items() if e not in truth]
    assert min(true_scores) > max(other_scores)


def test_saturated_attention_defeats_eap_but_not_eap_ig(hand_data):
    """With the induction head's attention saturated (beta = 15) the softmax gradient vanishes, so
    EAP underrates the key path (previous-token head -> induction head); integrated gradients,
    which also sees the unsaturated points of the path, still rank every true edge first."""
    model = interp.HookedModel(handset.build(beta=15.0))
    eap = discover(model, hand_data, "eap", ablation="resample")
    ig = discover(model, hand_data, "eap-ig", ablation="resample", steps=5)
    assert edge_auroc(eap, handset.TRUE_CIRCUIT) < 1.0
    assert edge_auroc(ig, handset.TRUE_CIRCUIT) == 1.0


def test_acdc_recovers_the_true_circuit(hand, hand_data, hand_scores):
    circuit = hand_scores["acdc"].to_circuit()
    assert circuit.edge_pairs() == handset.TRUE_CIRCUIT.edge_pairs()
    f = faithfulness(hand, hand_data, circuit, ablation="resample")
    assert f.faithfulness == pytest.approx(1.0, abs=1e-3)
    assert f.completeness == pytest.approx(1.0, abs=1e-3)


def test_acdc_with_kl_and_separate_qkv_recovers_the_true_qkv_edges(hand, hand_data):
    config = ACDCConfig(score="kl", threshold=0.05, relative=False, ablation="resample", separate_qkv=True)
    circuit = acdc(hand, hand_data, config).to_circuit()
    assert set(circuit.edges) == set(handset.TRUE_QKV_EDGES)


def test_auroc_table_and_true_circuit_from_a_card(hand_scores):
    truth = true_circuit(handset.card())
    rows = auroc_table(hand_scores, truth, model=handset.NAME)
    assert [r["method"] for r in rows] == list(METHODS)
    assert all(r["node_auroc"] == 1.0 for r in rows)
    assert "| handset-induction | eap | 1.000 |" in format_table(rows)


# -- AUROC on synthetic scores ------------------------------------------------------------------------------
def test_auroc_counts_ties_half_and_merges_qkv_channels():
    scores = {
        Edge.of("embed", "L0.H0"): 3.0,
        Edge.of("embed", "L0.H1"): -2.0,
        Edge.of("L0.H0", "logits"): 1.0,
        Edge.of("L0.H1", "logits"): 1.0,
    }
    assert edge_auroc(scores, [("embed", "L0.H0"), ("embed", "L0.H1")]) == 1.0  # |score| ranks
    assert edge_auroc(scores, [("embed", "L0.H1")], absolute=False) == 0.0
    assert edge_auroc(scores, [("L0.H0", "logits")]) == pytest.approx(
        0.5 / 3 + 0.0
    )  # tie with one negative, below two
    fpr, tpr = roc_curve(scores, [("embed", "L0.H0")])
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    qkv = {
        Edge.of("embed", "L0.H0", "q"): 0.1,
        Edge.of("embed", "L0.H0", "k"): 5.0,
        Edge.of("embed", "L0.H1", "v"): 1.0,
    }
    assert edge_auroc(qkv, [("embed", "L0.H0")]) == 1.0
    with pytest.raises(InterpError, match="not in the scored graph"):
        edge_auroc(scores, [("L3.H0", "logits")])
    with pytest.raises(InterpError, match="at least one true and one false"):
        edge_auroc(scores, list(scores))


# -- faithfulness -------------------------------------------------------------------------------------------
def test_faithfulness_curve_runs_from_empty_to_full(hand, hand_data, hand_scores):
    curve = faithfulness_curve(hand, hand_data, hand_scores["eap-ig"], ablation="resample")
    assert curve.n_edges[0] == 0 and curve.n_edges[-1] == len(hand_scores["eap-ig"].scores)
    assert curve.faithfulness[0] == pytest.approx(0.0, abs=1e-6)
    assert curve.faithfulness[-1] == pytest.approx(1.0, abs=1e-6)
    k = curve.n_edges.index(len(handset.TRUE_EDGES))  # the true edges come first
    assert curve.faithfulness[k] == pytest.approx(1.0, abs=1e-3)
    assert 0.5 < curve.cpr <= 1.0 and curve.cmd == pytest.approx(1 - curve.cpr, abs=0.1)
    empty = faithfulness(hand, hand_data, Circuit((), ()), ablation="mean")
    assert empty.faithfulness == pytest.approx(0.0, abs=1e-6) and empty.n_edges == 0


# -- bad input -----------------------------------------------------------------------------------------------
def test_a_metric_that_ignores_the_model_is_refused(hand, hand_data):
    constant = CircuitData(hand_data.clean, hand_data.corrupted, metric=lambda logits: torch.tensor(1.0))
    for method in ("eap", "acdc"):
        with pytest.raises(InterpError, match="does not depend on the model|does not measure anything"):
            discover(hand, constant, method)


def test_a_threshold_that_prunes_everything_gives_an_empty_circuit(hand, hand_data, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        scores = acdc(hand, hand_data, ACDCConfig(threshold=1e6, ablation="resample"))
    assert "pruned every edge" in caplog.text
    circuit = scores.to_circuit()
    assert circuit.edges == () and circuit.nodes == ()
    paths = circuit.export(tmp_path, ["json", "dot", "graphml", "tikz", "svg"])
    assert Circuit.load(tmp_path / "circuit.json") == circuit and len(paths) == 5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, d: discover(m, d, "eapp"), "did you mean eap"),
        (lambda m, d: discover(m, d, "eap", ablation="noise"), "unknown ablation"),
        (lambda m, d: discover(m, d, "eap", steps=3), "has no option steps"),
        (lambda m, d: discover(m, d, "eap-ig", steps=0), "steps >= 1"),
        (lambda m, d: CircuitData(d.clean, d.corrupted[:, :-1], d.metric), "differ in shape"),
        (lambda m, d: discover(m, object(), "eap"), "expected CircuitData"),
    ],
)
def test_bad_input_raises_interp_error(hand, hand_data, call, message):
    with pytest.raises(InterpError, match=message):
        call(hand, hand_data)


def test_a_graph_built_for_another_model_is_refused(tiny):
    model, data = tiny
    other = ComputationalGraph.build(interp.HookedModel(tiny_models.make("neox-parallel")).cfg)
    with pytest.raises(InterpError, match="built for a different model"):
        forward(model, other, data.clean)
