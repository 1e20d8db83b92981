"""Circuit discovery on every wired family (tiny random float64 models): the edge-level forward is the
model when nothing is patched and the corrupted run when everything is, EAP equals a slow
finite-difference reference of the patched metric, EAP-IG with one step is EAP, ACDC with threshold 0
keeps every edge, and node patching agrees with the hook layer."""

from __future__ import annotations

import pytest
import torch

import interp
from circuits.discovery import ACDCConfig, CircuitData, ComputationalGraph, acdc, discover
from circuits.discovery.architecture import UnwiredFamilyError
from circuits.discovery.engine import forward
from circuits.graph import Node
from tests import tiny_models

UNWIRED = {"bert"}  # post-norm encoder: refused (test at the end)
FLOAT32_ONLY = {"mixtral"}  # torch's grouped expert matmul has no float64 kernel (tested in float32 below)
FAMILIES = [f for f in tiny_models.ALL_FAMILIES if f not in UNWIRED | FLOAT32_ONLY]
"""Every family the hook layer supports, including those the adapter tables added after GPT-2, GPT-NeoX
and Llama (OPT, GPT-J, Falcon, Phi, BLOOM, Granite with multipliers, OLMo 2 with post-norms, ...)."""
POST_NORM = {"gemma2", "gemma3", "olmo2"}  # head outputs pass through a norm before joining the stream


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request):
    model = interp.HookedModel(tiny_models.make(request.param).double())
    gen = torch.Generator().manual_seed(1)
    clean, corrupted = torch.randint(0, tiny_models.VOCAB, (2, 3, 7), generator=gen)
    data = CircuitData(
        clean, corrupted, metric=lambda logits: logits[:, -1, 3].mean() - logits[:, -1, 5].mean()
    )
    return request.param, model, data


def _patch_gradient(model, graph, data, alt, base):
    """Slow reference: d metric / d (patch weight of each edge) at `base`, by autograd through the
    patched forward in which every destination is rewired (per-head recomputed q/k/v, no probes).
    A 1e-30 offset on every weight forces the rewiring without moving the point in float64."""
    weights = (base + 1e-30).clone().requires_grad_()
    logits = forward(model, graph, data.clean, alt=alt, patch=graph.dense(weights)).logits
    return torch.autograd.grad(data.metric(logits), weights)[0]


def test_graph_shape_follows_the_architecture(tiny):
    name, model, _ = tiny
    graph = ComputationalGraph.build(model.cfg)
    kv = model.cfg.n_kv_heads
    gqa = kv < model.cfg.n_heads
    assert graph.separate_qkv == gqa and graph.parallel_residual == (model.arch.residual == "parallel")
    per_block = 4 + 2 * kv if gqa else 4  # q heads + k/v heads (tiny configs: 4 heads)
    mlp_reads = (1, 6) if graph.parallel_residual else (5, 10)
    assert len(graph.edges) == per_block * (1 + 6) + sum(mlp_reads) + 11
    assert len(set(graph.edges)) == len(graph.edges)
    if kv == 2:  # an edge named without a channel: the q input of the head and the k/v inputs of its group
        mask = graph.mask([("L0.H3", "L1.H3")])
        chosen = {str(e) for e, m in zip(graph.edges, mask.tolist(), strict=True) if m}
        assert chosen == {"L0.H3->L1.H3.q", "L0.H3->L1.H1.k", "L0.H3->L1.H1.v"}


def test_unpatched_forward_is_the_model_bitwise(tiny):
    _, model, data = tiny
    graph = ComputationalGraph.build(model.cfg)
    assert torch.equal(forward(model, graph, data.clean).logits, model(data.clean))
    assert torch.equal(forward(model, graph, data.clean, record=True).logits, model(data.clean))
    assert model.hooks_installed() == 0


@pytest.mark.parametrize("separate_qkv", [False, True])
def test_patching_every_edge_gives_the_corrupted_run(tiny, separate_qkv):
    _, model, data = tiny
    graph = ComputationalGraph.build(model.cfg, separate_qkv)
    alt = forward(model, graph, data.corrupted, record=True).sources
    patched = forward(model, graph, data.clean, alt=alt, patch=graph.dense(torch.ones(len(graph.edges))))
    torch.testing.assert_close(
        patched.logits, model(data.corrupted), atol=1e-6, rtol=0
    )  # some norms run in float32


def test_patching_a_nodes_outgoing_edges_is_interp_patch(tiny):
    """All edges out of a node == patching the node's output through the hook layer (a head's output
    is only its own on families without a post-sublayer norm)."""
    name, model, data = tiny
    graph = ComputationalGraph.build(model.cfg)
    alt = forward(model, graph, data.corrupted, record=True).sources
    cases = [("MLP0", "blocks.0.hook_mlp_out", None)]
    if name not in POST_NORM:
        cases.append(("L0.H2", "blocks.0.attn.hook_z", (2,)))
    for node, hook, heads in cases:
        outgoing = torch.tensor([e.src == Node.parse(node) for e in graph.edges]).double()
        ours = forward(model, graph, data.clean, alt=alt, patch=graph.dense(outgoing)).logits
        _, cache = model.run_with_cache(data.corrupted, names=[hook])
        ref = model.run_with_interventions(data.clean, [interp.Patch(hook, cache[hook], heads=heads)])
        torch.testing.assert_close(ours, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("separate_qkv", [False, True])
def test_eap_equals_per_edge_patching_of_the_linearised_metric(tiny, separate_qkv):
    """EAP (probes, one backward, q/k/v gradients mapped to head inputs through the weights) against
    the derivative of the patched metric per edge weight (see `_patch_gradient`); finite differences
    are checked on GPT-2 in test_discovery.py (here several families compute norms in float32)."""
    _, model, data = tiny
    scores = discover(model, data, "eap", separate_qkv=separate_qkv)
    graph = scores.graph
    alt = forward(model, graph, data.corrupted, record=True).sources
    reference = _patch_gradient(model, graph, data, alt, torch.zeros(len(graph.edges), dtype=torch.float64))
    torch.testing.assert_close(scores.scores, reference, atol=1e-4, rtol=0)
    assert float(scores.scores.abs().max()) > 1e-2  # the comparison is not between zeros


def test_probe_gradients_with_a_rewired_block_match_the_reference(tiny):
    """Block 1's heads rewired (and probed per head) while block 0 is differentiated at its q, k, v."""
    _, model, data = tiny
    graph = ComputationalGraph.build(model.cfg)
    alt = forward(model, graph, data.corrupted, record=True).sources
    suffix = ".k" if graph.separate_qkv else ""
    base = 0.5 * graph.mask(["L0.H1->L1.H0" + suffix]).double()
    run = forward(model, graph, data.clean, alt=alt, patch=graph.dense(base), probe=True, record=True)
    grads = run.grads(graph, data.metric(run.logits))  # [n_dests, batch, pos, d_model]
    dense = torch.einsum("sbpd,tbpd->ts", (alt - run.sources).detach(), grads)  # [n_dests, n_sources]
    estimate = dense[graph.edge_dst, graph.edge_src]
    torch.testing.assert_close(estimate, _patch_gradient(model, graph, data, alt, base), atol=1e-4, rtol=0)


def test_eap_ig_with_one_step_is_eap(tiny):
    _, model, data = tiny
    eap = discover(model, data, "eap")
    ig1 = discover(model, data, "eap-ig", steps=1)
    assert torch.equal(eap.scores, ig1.scores)


def test_eap_ig_points_in_one_pass_or_many_agree(tiny):
    _, model, data = tiny
    one = discover(model, data, "eap-ig", steps=3, points_per_pass=1)
    many = discover(model, data, "eap-ig", steps=3, points_per_pass=8)
    torch.testing.assert_close(one.scores, many.scores, atol=1e-10, rtol=1e-8)


def test_acdc_with_threshold_zero_keeps_every_edge(tiny):
    _, model, data = tiny
    scores = acdc(model, data, ACDCConfig(threshold=0.0))
    assert scores.metadata["n_kept"] == len(scores.graph.edges)
    assert scores.metadata["circuit_metric"] == pytest.approx(scores.metadata["clean_metric"], abs=1e-9)


def test_node_attribution_runs_and_sums_edge_scores(tiny):
    _, model, data = tiny
    eap, node = discover(model, data, "eap"), discover(model, data, "node")
    for source in eap.graph.sources:
        total = sum(s for e, s in eap.as_dict().items() if e.src == source)
        assert node.node_scores[source] == pytest.approx(total, rel=1e-6, abs=1e-9)


def test_an_encoder_is_refused_naming_the_family():
    model = interp.HookedModel(tiny_models.make("bert"))
    data = CircuitData(
        torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.long), lambda x: x.sum()
    )
    with pytest.raises(
        UnwiredFamilyError, match="cannot wire the 'bert' family: it normalises the residual stream"
    ):
        discover(model, data, "eap")


def test_auroc_under_grouped_query_attention_credits_shared_kv_inputs_to_the_group():
    """H0 and H1 share k/v head 0 (named L0.H0.k/v): its k/v edges count for both heads' pairs, so
    with L0.H1 true the pair embed->L0.H0 ties with embed->L0.H1; derived node scores do not credit
    the shared k/v inputs to head L0.H0."""
    from circuits.discovery import EdgeScores, edge_auroc, node_auroc

    model = interp.HookedModel(tiny_models.make("llama"))
    graph = ComputationalGraph.build(model.cfg)
    values = torch.full((len(graph.edges),), 0.01)
    for name, value in (("embed->L0.H1.q", 1.0), ("embed->L0.H0.k", 2.0), ("embed->L0.H0.v", 3.0)):
        values[graph.edge_index(name)] = value
    values[graph.edge_index("L0.H1->logits")] = 1.5
    scores = EdgeScores(graph, values, "eap")
    n_neg = len(scores.collapse_qkv()) - 2  # distinct (src, dst) pairs but the two true ones
    # (embed, L0.H1) = 3 ties (embed, L0.H0) = 3; (L0.H1, logits) = 1.5 is below it, above the rest
    expected = (2 * n_neg - 1.5) / (2 * n_neg)
    assert edge_auroc(scores, [("embed", "L0.H1"), ("L0.H1", "logits")]) == pytest.approx(expected)
    assert node_auroc(scores, ["L0.H1"]) == 1.0


@pytest.mark.parametrize("family", ["llama", "neox-parallel"])
def test_feature_circuits_run_on_other_families(family):
    """Coordinate SAEs (exact: latents relu(x_i), relu(-x_i)) on both blocks' residual streams: the
    error nodes carry nothing, and each site's node effects add up to the effect of patching the
    whole site, here the corrupted run at every position (integrated gradients' completeness, up to
    the step count: 80 steps; 0.12 -> 0.116 for 20 -> 80 against 0.113 on llama)."""
    saes = pytest.importorskip("saes")
    model = interp.HookedModel(tiny_models.make(family).double())
    d = model.cfg.d_model

    def coordinate_sae(hook):
        sae = saes.build(saes.SAEConfig("relu", d_in=d, d_sae=2 * d, hook_in=hook, normalize="none"))
        with torch.no_grad():
            eye = torch.eye(d)
            sae.W_enc.copy_(torch.cat([eye, -eye], 1))
            sae.W_dec.copy_(torch.cat([eye, -eye], 0))
            sae.b_enc.zero_()
            sae.b_dec.zero_()
        return sae.double().eval()

    gen = torch.Generator().manual_seed(2)
    clean, corrupted = torch.randint(0, tiny_models.VOCAB, (2, 4, 6), generator=gen)
    data = CircuitData(
        clean, corrupted, metric=lambda logits: logits[:, -1, 3].mean() - logits[:, -1, 5].mean()
    )
    pair = [coordinate_sae(f"blocks.{layer}.hook_resid_post") for layer in (0, 1)]
    scores = discover(model, data, "features", saes=pair, steps=80, nodes_per_site=2 * d)
    nodes = scores.node_scores
    assert nodes[Node.error(0, "resid")] == pytest.approx(0.0, abs=1e-12)
    assert nodes[Node.error(1, "resid")] == pytest.approx(0.0, abs=1e-12)
    assert scores.metadata["clean_metric"] == pytest.approx(
        float(data.metric(model(clean)).detach()), abs=1e-9
    )
    _, cache = model.run_with_cache(corrupted, names=["blocks.1.hook_resid_post"])
    patched = model.run_with_interventions(
        clean, [interp.Patch("blocks.1.hook_resid_post", cache["blocks.1.hook_resid_post"])]
    )
    total = float((data.metric(patched) - data.metric(model(clean))).detach())
    for layer in (0, 1):
        site = sum(s for n, s in nodes.items() if n.kind == "feature" and n.layer == layer)
        assert site == pytest.approx(total, rel=0.05), layer


def test_pruning_keeps_a_grouped_kv_input_read_by_a_kept_head():
    """k/v input L0.H0.k (k/v head 0) feeds query heads L0.H0 and L0.H1; only L0.H1 reaches logits."""
    from circuits.discovery.scores import prune_edges
    from circuits.graph import Edge

    edges = [Edge.parse(e) for e in ("embed->L0.H0.k", "embed->L0.H1.q", "L0.H1->logits", "embed->L0.H1.k")]
    kept = {str(e) for e in prune_edges(edges, group=2)}
    assert kept == {"embed->L0.H0.k", "embed->L0.H1.q", "L0.H1->logits"}  # L0.H1.k is k/v head 1: H2, H3
    assert {str(e) for e in prune_edges(edges)} == {"embed->L0.H1.q", "L0.H1->logits", "embed->L0.H1.k"}


def test_default_selection_on_the_llama_ground_truth_model_is_faithful():
    """greater-than-llama-siit (4 query heads sharing 2 k/v heads): the circuit `interp circuit`
    exports keeps the k/v input of L0.H1's group, so it carries the whole behaviour."""
    from circuits.discovery import benchmark

    result = benchmark.selection_faithfulness(
        "greater-than-llama-siit", {"eap": {}, "acdc": {}, "node": {}}, n=16
    )
    for method, row in result.items():
        assert row["faithfulness"] == pytest.approx(1.0, abs=0.05), method


def test_mixture_of_experts_in_float32():
    """Mixtral (router + experts as the MLP source; no float64 expert kernel): EAP against the
    per-edge derivative of the patched metric, and all edges patched = the corrupted run."""
    model = interp.HookedModel(tiny_models.make("mixtral"))
    gen = torch.Generator().manual_seed(1)
    clean, corrupted = torch.randint(0, tiny_models.VOCAB, (2, 3, 7), generator=gen)
    data = CircuitData(
        clean, corrupted, metric=lambda logits: logits[:, -1, 3].mean() - logits[:, -1, 5].mean()
    )
    scores = discover(model, data, "eap")
    graph = scores.graph
    alt = forward(model, graph, corrupted, record=True).sources
    reference = _patch_gradient(model, graph, data, alt, torch.zeros(len(graph.edges)))
    torch.testing.assert_close(scores.scores, reference, atol=1e-4, rtol=0)
    patched = forward(model, graph, clean, alt=alt, patch=graph.dense(torch.ones(len(graph.edges)))).logits
    torch.testing.assert_close(patched, model(corrupted), atol=1e-5, rtol=0)


@pytest.mark.parametrize("separate_qkv", [False, True])
def test_closed_form_norm_gradients_equal_the_generic_vjp(tiny, separate_qkv, monkeypatch):
    """The attention norm's closed-form VJP (gain and centring folded into the q/k/v weights, the
    sum over stacked IG points taken before d_model is formed) against torch.func.vjp under vmap."""
    from circuits.discovery import engine

    _, model, data = tiny
    fast = discover(model, data, "eap-ig", steps=3, separate_qkv=separate_qkv)
    monkeypatch.setattr(engine, "closed_form", lambda module: None)
    generic = discover(model, data, "eap-ig", steps=3, separate_qkv=separate_qkv)
    # several families (Llama's RMSNorm) compute their norms in float32 inside a float64 model
    scale = float(generic.scores.abs().max())
    torch.testing.assert_close(fast.scores, generic.scores, atol=1e-6 * scale, rtol=1e-5)
