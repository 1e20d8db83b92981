"""Sparse feature circuits and SHIFT-style edits on the hand-set induction model, with SAEs whose
latents are the residual stream's coordinates (+ and - parts): a dictionary whose features are
known, so the circuit's features can be checked against the model's design."""

from __future__ import annotations

import pytest
import torch

from circuits.discovery import discover, handset
from circuits.discovery.features import FeatureCircuitConfig, sites_of
from circuits.discovery.shift import ablate_features, shift_effect
from circuits.graph import Node
from interp.errors import InterpError

saes = pytest.importorskip("saes")
D = handset.D_MODEL


def coordinate_sae(hook: str):
    """ReLU SAE with latents relu(x_i) (i < D) and relu(-x_i): exact reconstruction, zero error."""
    sae = saes.build(saes.SAEConfig("relu", d_in=D, d_sae=2 * D, hook_in=hook, normalize="none"))
    with torch.no_grad():
        eye = torch.eye(D)
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


def subspace(i: int) -> str:
    starts = {
        "TOK": handset.TOK,
        "POS": handset.POS,
        "PREV": handset.PREV,
        "J0": handset.J0,
        "OUT": handset.OUT,
        "J1": handset.J1,
        "OUT2": handset.OUT2,
        "SINK": handset.SINK,
    }
    return max((s, n) for n, s in starts.items() if s <= i % D)[1]


@pytest.fixture(scope="module")
def setup():
    model = handset.load()
    data = handset.induction_data(16, seed=0)
    pair = [coordinate_sae("blocks.0.hook_resid_post"), coordinate_sae("blocks.1.hook_resid_post")]
    scores = discover(model, data, "features", saes=pair, steps=3, nodes_per_site=8)
    return model, data, pair, scores


def test_feature_nodes_are_the_designed_subspaces(setup):
    _, _, _, scores = setup
    nodes = scores.node_scores
    assert nodes[Node.error(0, "resid")] == 0.0 and nodes[Node.error(1, "resid")] == 0.0  # exact SAEs
    by_site = {
        site: sorted(
            (n for n in nodes if n.kind == "feature" and n.layer == layer), key=lambda n: -abs(nodes[n])
        )
        for site, layer in (("L0", 0), ("L1", 1))
    }
    # the answer is read from OUT2 (written by the MLP relay); the corrupted B token enters through TOK
    assert {subspace(n.index) for n in by_site["L1"]} == {"OUT2"}
    assert {subspace(n.index) for n in by_site["L0"]} == {"TOK"}


def test_feature_edges_connect_consecutive_sites_and_export(setup, tmp_path):
    _, _, _, scores = setup
    kinds = {(e.src.layer, e.dst.kind if e.dst.kind == "logits" else e.dst.layer) for e in scores.graph.edges}
    assert kinds == {(0, 1), (1, "logits")}
    strongest = scores.top(1)[0][0]
    assert strongest.src.layer == 0 and subspace(strongest.dst.index) == "OUT2"
    circuit = scores.to_circuit(top_n=12)
    assert circuit.edges and all(n.kind in ("feature", "error", "logits") for n in circuit.nodes)
    circuit.export(tmp_path, ["json", "dot", "tikz"])
    assert "F" in (tmp_path / "circuit.dot").read_text()


def test_shift_ablation_removes_the_answer_features_only(setup):
    model, data, pair, _ = setup
    out2 = [Node.feature(1, "resid", handset.OUT2 + i) for i in range(handset.C)]
    junk = [Node.feature(1, "resid", handset.J1 + i) for i in range(handset.C)]
    answer = shift_effect(model, data, pair, out2)
    assert answer["before"] > 5 and answer["after"] == pytest.approx(0.0, abs=1e-4)
    assert shift_effect(model, data, pair, junk)["change"] == pytest.approx(0.0, abs=1e-2)
    assert shift_effect(model, data, pair, out2, kind="mean")["after"] < 1.0
    with ablate_features(model, pair, out2[:1]):
        assert model.hooks_installed() > 0
    assert model.hooks_installed() == 0


def test_feature_circuit_input_errors(setup):
    model, data, pair, _ = setup
    with pytest.raises(InterpError, match="at least one SAE"):
        discover(model, data, "features")
    with pytest.raises(InterpError, match="hook_resid_post, hook_attn_out or hook_mlp_out"):
        sites_of({"blocks.0.attn.hook_z": pair[0]})
    with pytest.raises(InterpError, match="corrupted, mean or zero"):
        FeatureCircuitConfig(saes=pair, ablation="resample")
    with pytest.raises(InterpError, match="no SAE at"):
        shift_effect(model, data, pair, [Node.feature(0, "mlp", 3)])
