"""Attribution graphs end to end: bad input, the intervention check, graph.json and Circuit export, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

import interp
from circuits.attribution.checking import check_interventions
from circuits.attribution.export import to_circuit, viewer_json
from circuits.attribution.graph import attribute
from circuits.attribution.pruning import prune, scores
from circuits.attribution.replacement import ReplacementModel, TranscoderMismatchError
from interp.errors import InterpError
from saes.transcoder_set import TranscoderSet
from tests.circuits.attribution_helpers import PROMPT, handset_transcoders, trained_set
from tests.circuits.cli_helpers import run
from tests.tiny_models import make


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.load("shakespeare-tiny")


@pytest.fixture(scope="module")
def tset(model) -> TranscoderSet:
    return trained_set(model, "topk", cross_layer=False, tokens=60_000)


@pytest.fixture(scope="module")
def traced(model, tset):
    rm = ReplacementModel(model, tset)
    graph = attribute(rm, PROMPT)
    return rm, graph, prune(graph)


# ---- bad input ---------------------------------------------------------------------------------
def test_transcoders_of_the_wrong_width_or_depth_are_refused(model):
    with pytest.raises(TranscoderMismatchError, match="d_model is 128"):
        ReplacementModel(model, handset_transcoders())  # width 24, 2 layers
    small = interp.HookedModel(make("gpt2"))  # 2 layers of width 64
    with pytest.raises(TranscoderMismatchError, match="width 24"):
        ReplacementModel(small, handset_transcoders())


def test_a_set_with_too_few_layers_is_refused(model, tset):
    one = TranscoderSet(layers=[tset.layers[0]])
    with pytest.raises(TranscoderMismatchError, match="1 layers but the model has 2"):
        ReplacementModel(model, one)


def test_prompt_longer_than_the_context_is_refused(traced):
    rm, _, _ = traced
    with pytest.raises(InterpError, match="at most 128 positions|context is 128"):
        attribute(rm, torch.zeros(1, 129, dtype=torch.long))


def test_logit_outside_the_vocabulary_is_refused(traced):
    rm, _, _ = traced
    with pytest.raises(InterpError, match="not in the vocabulary"):
        attribute(rm, PROMPT, logits=[2048])


@pytest.mark.parametrize("family", ["bert", "neox-parallel"])
def test_models_that_cannot_be_decomposed_are_refused(family):
    hooked = interp.HookedModel(make(family))
    tset = handset_transcoders()
    with pytest.raises(InterpError, match="sequential pre-norm decoder"):
        ReplacementModel(hooked, tset)


def test_unknown_norms_are_refused():
    hooked = interp.HookedModel(make("gpt2"))

    class OddNorm(torch.nn.Module):
        def forward(self, x):
            return x / x.abs().max()

    hooked.hf_model.transformer.h[0].extra_norm = OddNorm()
    with pytest.raises(InterpError, match="cannot freeze OddNorm"):
        ReplacementModel(hooked, handset_transcoders())


@pytest.mark.parametrize("family", ["llama", "gemma", "neox-sequential"])
def test_other_families_reproduce_their_logits(family):
    """Frozen RMSNorm / (1 + w) RMSNorm / LayerNorm and their attention: exact replacement, linear edges."""
    hooked = interp.HookedModel(make(family))
    d, n_layers = hooked.cfg.d_model, hooked.cfg.n_layers
    from saes import SAEConfig, build
    from saes.transcoder_set import HOOK_IN, HOOK_OUT

    layers = [
        build(
            SAEConfig(
                "topk",
                d_in=d,
                d_sae=2 * d,
                k=4,
                hook_in=HOOK_IN.format(l=lyr),
                hook_out=HOOK_OUT.format(l=lyr),
                normalize="none",
            ),
            generator=torch.Generator().manual_seed(lyr),
        ).eval()
        for lyr in range(n_layers)
    ]
    rm = ReplacementModel(hooked, TranscoderSet(layers=layers))
    tokens = torch.tensor([[1, 5, 9, 2, 7, 3]])
    snap = rm.trace(tokens)
    assert (rm.replacement_logits(snap) - snap.logits).abs().max() < 1e-4
    graph = attribute(rm, tokens, batch_size=16)
    logits, mids = rm.linear_run(snap, rm.mlp_sources(snap))
    col = graph.embedding_index(2)
    embed = snap.embed.clone()
    embed[2] = 0
    logits2, _ = rm.linear_run(snap, rm.mlp_sources(snap), embed=embed)
    last, last2 = logits[0, -1], logits2[0, -1]
    for k, tok in enumerate(graph.logit_tokens):
        row = graph.slices()["logits"].start + k
        effect = (last[tok] - last.mean()) - (last2[tok] - last2.mean())
        assert abs(float(effect) - float(graph.adjacency[row, col])) < 1e-3


# ---- checking and export --------------------------------------------------------------------------
def test_intervention_agreement_on_shakespeare_tiny(traced):
    rm, graph, pruned = traced
    report = check_interventions(rm, graph, pruned, top=5, factors=(0.0, 2.0))
    by = report["correlation_by_freeze"]
    # with attention and norms frozen the graph's feature predictions are exact (real MLPs, live features)
    assert by["all"]["features"] > 0.999
    # with only the norms frozen, attention is live: still close
    assert by["norms"]["features"] > 0.9 and by["norms"]["logits"] > 0.8
    assert report["n_pairs"]["logits"] == 10 * len(graph.logit_tokens)
    assert report["correlation"]["features"] > 0.8


def test_viewer_json_has_the_fields_the_viewers_read(traced):
    rm, graph, pruned = traced
    view = viewer_json(
        graph,
        pruned,
        slug="s",
        model_name="shakespeare-tiny",
        transcoders="tc",
        prompt=PROMPT,
        node_threshold=0.8,
        edge_threshold=0.98,
        graph_scores=scores(graph),
        transcoder_kind="per_layer",
    )
    assert set(view) == {"metadata", "qParams", "nodes", "links"}
    assert view["metadata"]["prompt_tokens"] == graph.str_tokens and view["metadata"]["schema_version"] == 1
    ids = [n["node_id"] for n in view["nodes"]]
    assert len(ids) == len(set(ids)) == int(pruned.node_mask.sum())
    assert all(lyr["source"] in ids and lyr["target"] in ids for lyr in view["links"])
    assert len(view["links"]) == int(pruned.edge_mask.sum())
    kinds = {n["feature_type"] for n in view["nodes"]}
    assert kinds == {"cross layer transcoder", "mlp reconstruction error", "embedding", "logit"}
    logit = next(n for n in view["nodes"] if n["feature_type"] == "logit")
    assert logit["layer"] == "3" and logit["is_target_logit"] and logit["token_prob"] > 0
    assert view["qParams"]["pinnedIds"] == [
        n["node_id"] for n in view["nodes"] if n["feature_type"] == "logit"
    ]
    json.dumps(view)


def test_circuit_export(traced, tmp_path):
    _, graph, pruned = traced
    circuit = to_circuit(graph, pruned, {"prompt": PROMPT})
    assert len(circuit.edges) > 0
    names = {n.name for e in circuit.edges for n in e.pair}
    assert "logits" in names and "embed" in names and any(".mlp.F" in n for n in names)
    paths = circuit.export(tmp_path, ["json", "dot", "graphml", "tikz", "svg"])
    assert all(p.stat().st_size > 0 for p in paths)


# ---- CLI --------------------------------------------------------------------------------------------
def test_cli_attribute_and_bad_input(tset, tmp_path, capsys):
    tset.save(tmp_path / "tc")
    out = tmp_path / "out"
    code = run(
        [
            "attribute",
            "shakespeare-tiny",
            "--transcoders",
            str(tmp_path / "tc"),
            "--prompt",
            PROMPT,
            "--out",
            str(out),
            "--check-top",
            "2",
            "--format",
            "json,dot",
        ]
    )
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"graph.json", "result.json", "circuit.json", "circuit.dot"}
    result = json.loads((out / "result.json").read_text())
    assert result["command"] == "attribute" and result["metrics"]["n_edges"] > 0
    assert result["interventions"]["n_pairs"]["logits"] > 0
    capsys.readouterr()
    code = run(
        [
            "attribute",
            "shakespeare-tiny",
            "--transcoders",
            str(tmp_path / "tc"),
            "--prompt",
            PROMPT,
            "--out",
            str(tmp_path / "o2"),
            "--logits",
            "999999",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not in the vocabulary" in err and "Traceback" not in err
    code = run(
        [
            "attribute",
            "shakespeare-tiny",
            "--transcoders",
            str(tmp_path),
            "--prompt",
            PROMPT,
            "--out",
            str(tmp_path / "o3"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a transcoder set" in err
