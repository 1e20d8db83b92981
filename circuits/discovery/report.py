"""End to end for `interp circuit`: load a model and a task, discover, check, export, write result.json.

The output folder (built under a temporary name, moved into place only when complete):

| file | content |
|---|---|
| `result.json` | inputs, config, seed, versions; metrics: clean/ablated metric, circuit size, faithfulness, completeness, CPR/CMD; `auroc` (edge and node) when the model card has a circuit |
| `circuit.<fmt>` | the exported circuit in each `--format` (json, dot, svg, pdf, png, graphml, tikz -> .tex) |
| `scores.json` | every edge of the graph with its score (the circuit JSON schema) |
| `attention.json` | every head's attention pattern on the first clean prompt (for `interp view`) |
| `faithfulness.png` | faithfulness against the fraction of edges kept (component methods) |

    >>> payload = circuit_report("ioi-tiny", "out", CircuitOptions(task="ioi", method="eap"))
    >>> payload["metrics"]["faithfulness"]
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

import torch

import interp
from circuits.configs import DEFAULT_TOP_N, CircuitOptions
from circuits.discovery import handset
from circuits.discovery.data import CircuitData, default_ablation
from circuits.discovery.evaluation import edge_auroc, node_auroc, true_circuit
from circuits.discovery.faithfulness import faithfulness, faithfulness_curve
from circuits.discovery.registry import get, make_config
from circuits.discovery.scores import EdgeScores
from circuits.graph import Circuit, renderer
from interp import HookedModel
from interp.errors import InterpError
from interp.io import atomic_dir, write_result
from interp.tasks import get as get_task
from interp.view.record import record_attention, write_attention

CARD_FILE = "card.json"


class EmptyCircuitError(InterpError):
    """An explicit threshold kept no edge (the empty circuit is written anyway)."""


def load_model(name: str) -> tuple[HookedModel, dict | None, Path | None]:
    """The model, its card (or None) and its folder (or None); `handset-induction` is built in memory."""
    if name == handset.NAME:
        return handset.load(), handset.card(), None
    model = interp.load(name)
    folder = None
    zoo = importlib.import_module("interp.zoo")
    if hasattr(zoo, "names") and name in zoo.names():
        folder = Path(zoo.path(name))
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
    card = None
    if folder is not None and (folder / CARD_FILE).is_file():
        card = json.loads((folder / CARD_FILE).read_text())
    return model, card, folder


def task_data(model: HookedModel, card: dict | None, opts: CircuitOptions) -> CircuitData:
    """`opts.n` examples of the task (with the card's task options, if any) as `CircuitData`."""
    options = {}
    tasks = (card or {}).get("tasks")
    if isinstance(tasks, dict) and isinstance(tasks.get(opts.task), dict):
        options = tasks[opts.task]
    batch = get_task(opts.task, **options).generate(opts.n, seed=opts.seed)
    top = int(max(batch.clean.max(), batch.corrupted.max()))
    if top >= model.cfg.d_vocab:
        raise InterpError(
            f"task {opts.task!r} uses token id {top} but the model's vocabulary has {model.cfg.d_vocab} tokens: "
            "use a model trained on the task tokenizer"
        )
    return CircuitData.from_task(batch, metric=opts.metric)


def load_saes(paths: tuple[str, ...]) -> list[Any]:
    """SAEs from folders: an SAE folder, a `sae train` output (SAE in `sae/`), or a folder of those."""
    saes = importlib.import_module("saes")
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        candidates = [
            path,
            path / "sae",
            *sorted(p for p in path.glob("*") if p.is_dir()),
            *sorted(path.glob("*/sae")),
        ]
        hits = [c for c in candidates if (c / "cfg.json").is_file()]
        if not hits:
            raise InterpError(f"no SAE (cfg.json) found at {path}")
        found += hits if not (path / "cfg.json").is_file() else [path]
    return [saes.load(p) for p in dict.fromkeys(found)]


def _overrides(opts: CircuitOptions, ablation: str) -> dict[str, Any]:
    wanted = {
        "ablation": ablation,
        "steps": opts.steps,
        **({"threshold": opts.threshold} if opts.threshold is not None else {}),
        "separate_qkv": opts.separate_qkv,
    }
    if opts.method == "features":
        wanted["saes"] = tuple(load_saes(opts.saes)) if opts.saes else ()
        if not wanted["saes"]:
            raise InterpError("--method features needs SAEs: --saes FOLDER (from `interp sae train`)")
        if ablation not in ("corrupted", "mean", "zero"):
            wanted["ablation"] = "corrupted"
    fields = {f.name for f in dataclasses.fields(get(opts.method).config)}
    return {k: v for k, v in wanted.items() if k in fields}


def select_circuit(scores: EdgeScores, opts: CircuitOptions) -> Circuit:
    """The exported circuit. ACDC: the edges it kept; when its default threshold kept none, the top
    edges by |effect| instead (said in the selection note). Scoring methods: `--top-n` and/or
    `--threshold`. Only an explicit threshold can give an empty circuit."""
    top_n = opts.top_n if opts.top_n is not None or opts.threshold is not None else DEFAULT_TOP_N
    if "circuit_mask" in scores.metadata:
        circuit = scores.to_circuit()
        if circuit.edges or opts.threshold is not None:
            return circuit
        fallback = scores.to_circuit(top_n=opts.top_n or DEFAULT_TOP_N)
        selection = fallback.metadata["selection"]
        selection["note"] = (
            f"ACDC kept no edge at its default threshold; showing the top {selection['n_kept']} edges "
            "by |effect| instead" + (f" ({selection['note']})" if selection["note"] else "")
        )
        selection["widened"] = True
        return fallback
    return scores.to_circuit(top_n=top_n, threshold=opts.threshold if scores.method != "acdc" else None)


def _checks(
    model: HookedModel,
    data: CircuitData,
    scores: EdgeScores,
    circuit: Circuit,
    ablation: str,
    card: dict | None,
    folder: Path | None,
    tmp: Path,
) -> tuple[dict, dict | None, list[str]]:
    """Faithfulness (+ curve figure) and AUROC against the card's circuit, for component-level methods."""
    if get(scores.method).level == "feature":
        return {}, None, []
    faith = faithfulness(model, data, circuit, ablation=ablation, graph=scores.graph).to_dict()
    curve = faithfulness_curve(model, data, scores, ablation=ablation)
    curve.plot(tmp / "faithfulness.png")
    metrics = {
        **{k: faith[k] for k in ("faithfulness", "completeness", "circuit", "complement", "full", "empty")},
        "cpr": curve.cpr,
        "cmd": curve.cmd,
        "curve": curve.to_dict(),
    }
    aurocs = None
    if card and card.get("circuit"):
        truth = true_circuit(card, folder)
        aurocs = {
            "edge": edge_auroc(scores, truth),
            "node": node_auroc(scores, truth),
            "true_edges": len(truth.edges),
        }
    return metrics, aurocs, ["faithfulness.png"]


def circuit_report(model_name: str, out: str | Path, opts: CircuitOptions, force: bool = False) -> dict:
    """Discover a circuit with `opts.method` and write the folder described in the module docstring."""
    model, card, folder = load_model(model_name)
    ablation = default_ablation(card, opts.ablation)
    config = make_config(opts.method, **_overrides(opts, ablation))
    data = task_data(model, card, opts)
    torch.manual_seed(opts.seed)
    scores = get(opts.method).run(model, data, config)
    circuit = select_circuit(
        scores, opts
    )  # an empty circuit is logged by the method / selection and still exported
    meta = {"model": model_name, "task": opts.task, "method": opts.method, "ablation": ablation}
    circuit = dataclasses.replace(circuit, metadata={**circuit.metadata, **meta})
    with atomic_dir(out, force=force) as tmp:
        files = [p.name for p in circuit.export(tmp, opts.formats)]
        everything = scores.to_circuit(top_n=len(scores.scores), prune=False, metadata=meta)
        everything.save(tmp / "scores.json")
        write_attention(tmp, record_attention(model, data.clean[0].tolist()))  # for `interp view`
        checks, aurocs, figures = _checks(model, data, scores, circuit, ablation, card, folder, tmp)
        config_dict = {
            f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "saes"
        }
        metrics = {
            "clean_metric": scores.metadata.get("clean_metric"),
            "ablated_metric": scores.metadata.get("ablated_metric"),
            "n_edges": len(circuit.edges),
            "selection": circuit.metadata["selection"],
            "n_nodes": len(circuit.nodes),
            "n_graph_edges": len(scores.scores),
            "seconds": scores.metadata.get("seconds"),
            **checks,
        }
        extra = {"auroc": aurocs} if aurocs is not None else {}
        return write_result(
            tmp,
            command="circuit",
            inputs={
                "model": model_name,
                "task": opts.task,
                "method": opts.method,
                "n": opts.n,
                "formats": list(opts.formats),
                "saes": list(opts.saes),
            },
            config={"method": config_dict, "options": {**dataclasses.asdict(opts), "ablation": ablation}},
            seed=opts.seed,
            metrics=metrics,
            top_edges=[{"edge": str(e), "score": s} for e, s in scores.top(20)],
            files=[*files, "scores.json", *figures],
            renderer=renderer(),
            **extra,
        )
