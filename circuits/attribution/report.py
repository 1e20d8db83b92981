"""The run behind `interp attribute`: trace a prompt, prune, check by intervention, export a folder.

OUT/graph.json (viewer layout, `circuits.attribution.export`), OUT/result.json (inputs, config,
versions, metrics, intervention checks), OUT/circuit.<fmt> (the `Circuit` export).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import interp
from circuits.attribution.checking import check_interventions
from circuits.attribution.export import to_circuit, viewer_json
from circuits.attribution.graph import attribute
from circuits.attribution.pruning import prune, scores
from circuits.attribution.replacement import ReplacementModel
from circuits.graph import check_format
from interp.io import atomic_dir, atomic_write_json, write_result
from saes.transcoder_set import TranscoderSet


@dataclass(frozen=True)
class AttributeOptions:
    """Settings of one `interp attribute` run (recorded in result.json)."""

    node_threshold: float = 0.8
    """Fraction of the total feature influence the kept features carry."""
    edge_threshold: float = 0.98
    """Fraction of the total edge score the kept edges carry."""
    logits: tuple[int, ...] = ()
    """Logit token ids to explain; empty: the most likely until 95% probability (at most `max_logits`)."""
    max_logits: int = 10
    batch_size: int = 64
    """Targets per batched forward+backward pass."""
    check_top: int = 5
    """Features to intervene on (0: skip the check)."""
    factors: tuple[float, ...] = (0.0, 2.0)
    """Activation multipliers of the check (0 ablates)."""
    formats: tuple[str, ...] = ("json", "dot", "svg", "graphml", "tikz")
    device: str = "cpu"


def logit_ids(model: Any, logits: tuple[str, ...]) -> tuple[int, ...]:
    """Token ids from ids or single-token strings (a string that is not one token is an error)."""
    out = []
    for item in logits:
        if item.lstrip("-").isdigit():
            out.append(int(item))
            continue
        ids = model.tokenizer(item, add_special_tokens=False)["input_ids"] if model.tokenizer else []
        if len(ids) != 1:
            raise interp.InterpError(
                f"logit {item!r} is {len(ids)} tokens in this vocabulary, not one; pass a token id instead"
            )
        out.append(int(ids[0]))
    return tuple(out)


def attribute_report(
    model_name: Any,
    transcoders: str | Path,
    prompt: str,
    out: str | Path,
    opts: AttributeOptions,
    *,
    force: bool = False,
    progress: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline and write the output folder; returns result.json's payload.

    `model_name` is a name `interp.load` reads or a loaded `HookedModel` (then `name` labels it).
    """
    for fmt in opts.formats:
        check_format(fmt)
    model = interp.load(model_name, device=opts.device) if isinstance(model_name, str) else model_name
    tset = TranscoderSet.load(transcoders, device=opts.device)
    rm = ReplacementModel(model, tset)
    start = time.perf_counter()
    graph = attribute(
        rm,
        prompt,
        logits=list(opts.logits) or None,
        max_logits=opts.max_logits,
        batch_size=opts.batch_size,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    pruned = prune(graph, opts.node_threshold, opts.edge_threshold)
    graph_scores = scores(graph)
    checks = (
        check_interventions(rm, graph, pruned, top=opts.check_top, factors=opts.factors)
        if opts.check_top
        else None
    )
    name = name or (model_name if isinstance(model_name, str) else type(model.hf_model).__name__)
    view = viewer_json(
        graph,
        pruned,
        slug=Path(out).name,
        model_name=name,
        transcoders=str(transcoders),
        prompt=prompt,
        node_threshold=opts.node_threshold,
        edge_threshold=opts.edge_threshold,
        graph_scores=graph_scores,
        transcoder_kind=tset.kind,
    )
    metrics = {
        "n_features": graph.n_features,
        "n_graph_nodes": graph.n_nodes,
        "n_nodes": int(pruned.node_mask.sum()),
        "n_edges": int(pruned.edge_mask.sum()),
        "kept_feature_influence": pruned.kept_feature_influence,
        "kept_edge_score": pruned.kept_edge_score,
        "seconds": seconds,
        **graph_scores,
    }
    if checks is not None:
        metrics["intervention_correlation"] = checks["correlation"]
    with atomic_dir(out, force=force) as tmp:
        atomic_write_json(tmp / "graph.json", view)
        to_circuit(graph, pruned, {"model": name, "prompt": prompt}).export(tmp, opts.formats)
        payload = write_result(
            tmp,
            command="attribute",
            inputs={"model": name, "transcoders": str(transcoders), "prompt": prompt, "tokens": graph.tokens},
            config=asdict(opts),
            seed=None,
            metrics=metrics,
            logits=[
                {"token": t, "text": s, "prob": float(p)}
                for t, s, p in zip(graph.logit_tokens, graph.logit_strs, graph.logit_probs, strict=True)
            ],
            interventions=checks,
        )
    return payload
