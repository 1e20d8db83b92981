"""Result folders the viewer tests open: a real `interp demo --quick` report and an `interp circuit` folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory) -> Path:
    from interp.demo import run_demo

    out = tmp_path_factory.mktemp("view") / "demo-report"
    run_demo(out, quick=True)
    return out


@pytest.fixture(scope="session")
def circuit_folder(tmp_path_factory) -> Path:
    from circuits.discovery.report import CircuitOptions, circuit_report

    out = tmp_path_factory.mktemp("view") / "circuit"
    circuit_report(
        "handset-induction", out, CircuitOptions(task="induction", method="eap", formats=("json",), n=16)
    )
    return out


@pytest.fixture(scope="session")
def attribution_folder(tmp_path_factory) -> Path:
    """An `interp attribute` folder: graph.json in the circuit-tracer / Neuronpedia layout (built by hand:
    3 prompt positions, features in 2 layers, an error node, embeddings and one target logit)."""
    import json

    from interp.io import atomic_write_json, write_result

    out = tmp_path_factory.mktemp("view") / "attribution"
    tokens = ["<bos>", " The", " cat"]

    def node(node_id, layer, ctx, kind, feature=-1, clerp="", influence=None):
        return {
            "node_id": node_id,
            "feature": feature,
            "layer": layer,
            "ctx_idx": ctx,
            "feature_type": kind,
            "token_prob": 0.0,
            "is_target_logit": kind == "logit",
            "run_idx": 0,
            "reverse_ctx_idx": 0,
            "jsNodeId": node_id,
            "clerp": clerp,
            "influence": influence,
            "activation": None,
        }

    nodes = [node(f"E_{i}_{i}", "E", i, "embedding", clerp=t) for i, t in enumerate(tokens)]
    nodes += [
        node("0_5_1", "0", 1, "cross layer transcoder", 5, influence=0.4),
        node("0_9_1", "0", 1, "cross layer transcoder", 9, influence=0.2),
        node("0_7_2", "0", 2, "cross layer transcoder", 7, influence=0.3),
        node("1_3_2", "1", 2, "cross layer transcoder", 3, influence=0.5),
        node("1_-1_2", "1", 2, "mlp reconstruction error", influence=0.1),
        node("3_42_2", "3", 2, "logit", 42, clerp='Output " sat" (p=0.61)'),
    ]
    weights = [
        ("E_1_1", "0_5_1", 1.2),
        ("E_1_1", "0_9_1", -0.3),
        ("E_2_2", "0_7_2", 0.8),
        ("0_5_1", "1_3_2", 0.9),
        ("0_9_1", "1_3_2", 0.05),
        ("0_7_2", "1_3_2", -0.4),
        ("1_3_2", "3_42_2", 2.0),
        ("1_-1_2", "3_42_2", 0.2),
        ("E_2_2", "3_42_2", 0.6),
    ]
    graph = {
        "metadata": {
            "slug": "cat",
            "scan": "tiny",
            "prompt": "The cat",
            "prompt_tokens": tokens,
            "node_threshold": 0.8,
            "schema_version": 1,
        },
        "qParams": {
            "pinnedIds": ["3_42_2"],
            "supernodes": [],
            "linkType": "both",
            "clickedId": "",
            "sg_pos": "",
        },
        "nodes": nodes,
        "links": [{"source": s, "target": t, "weight": w} for s, t, w in weights],
    }
    out.mkdir()
    atomic_write_json(out / "graph.json", graph)
    write_result(
        out,
        command="attribute",
        inputs={"prompt": "The cat"},
        config={},
        seed=0,
        metrics={"n_nodes": len(nodes), "n_edges": len(weights)},
    )
    assert json.loads((out / "graph.json").read_text())["nodes"][0]["layer"] == "E"
    return out


@pytest.fixture(scope="session")
def feature_circuit_folder(demo_report, tmp_path_factory) -> Path:
    """A feature-circuit folder (as `interp circuit --method features --saes DIR` writes) whose
    circuit.json names latents of the demo's SAE, and the `sae train`-style folder of that SAE."""
    import json
    import shutil

    from interp.io import atomic_write_json, write_result

    root = tmp_path_factory.mktemp("view")
    sae_run = shutil.copytree(demo_report / "sae", root / "sae-run")
    (sae_run / "sae").mkdir()
    (sae_run / "sae" / "cfg.json").write_text(
        json.dumps({"metadata": {"hook_name": "blocks.1.hook_resid_post"}})
    )
    evaluation = json.loads((sae_run / "eval.json").read_text())
    evaluation.pop("hook_in")  # found through the SAE's cfg.json instead
    (sae_run / "eval.json").write_text(json.dumps(evaluation))
    first, second = (f["index"] for f in evaluation["features"][:2])
    names = ["embed", f"L1.resid.F{first}", f"L1.resid.F{second}", "L1.resid.err", "logits"]
    edges = [("embed", names[1], 0.8), ("embed", names[2], -0.3), ("embed", names[3], 0.1)]
    edges += [(n, "logits", s) for n, s in zip(names[1:4], (1.5, -0.6, 0.2), strict=True)]
    out = root / "feature-circuit"
    out.mkdir()
    atomic_write_json(
        out / "circuit.json",
        {
            "schema": "interp-toolkit/circuit",
            "version": 1,
            "nodes": [{"name": n, "score": None} for n in names],
            "edges": [{"src": a, "dst": b, "qkv": None, "score": s} for a, b, s in edges],
            "metadata": {"method": "features"},
        },
    )
    write_result(out, command="circuit", inputs={"method": "features", "saes": [str(sae_run / "sae")]},
                 config={}, seed=0, metrics={"n_edges": len(edges)})  # fmt: skip
    return out
