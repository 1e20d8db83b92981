"""Discovery methods on models whose circuit is known: AUROC against the true circuit, and cost in
units of one forward+backward pass.

Ground-truth models (`ground_truth_models()`): the hand-set induction model (`handset`) and every zoo
model whose card names a `circuit` (the SIIT models). Each is run on its card's task with the
ablation `interp circuit` uses: the card's `ablation`, else `corrupted`.

Accuracy (`accuracy`): edge AUROC (q/k/v channels merged; `evaluation.auroc`) and node AUROC (heads
and MLPs; for the edge methods a node scores the largest |score| of its edges) per data seed, and
the ROC curve and the rank of every true edge on the first seed.

Default-selection faithfulness (`selection_faithfulness`): on any zoo model with a task, the
faithfulness of the circuit `interp circuit` would export with each method (its default selection),
which is how the CLI's default method is chosen (`DEFAULT_METHOD_MODELS`).

Cost (`timing`): every method and the baseline, one forward+backward on the same clean batch (the
model's own forward, the metric, and its gradient with respect to every parameter, as a training
step computes it), interleaved so that load from other jobs hits both alike: each round runs
baseline, method, baseline, method, ..., baseline (the method order reversed every other round),
and a method's ratio is the median over rounds of its seconds over the mean of the two baseline
runs around it.

    >>> case = load_case("hier-eq-siit")
    >>> accuracy(case, {"eap-ig": {"steps": 5}}, n=64, seeds=(0, 1))["eap-ig"]["edge_auroc_mean"]
    >>> timing(case, {"eap": {}}, n=64, repeats=5)["methods"]["eap"]["ratio"]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

import interp
from circuits.discovery import handset
from circuits.discovery.data import CircuitData, check_ablation, default_ablation
from circuits.discovery.evaluation import edge_auroc, node_auroc, pair_scores, roc_curve, true_circuit
from circuits.discovery.faithfulness import faithfulness
from circuits.discovery.registry import discover
from circuits.discovery.report import CircuitOptions, load_model, task_data
from circuits.discovery.report import select_circuit as report_circuit
from circuits.discovery.scores import EdgeScores
from circuits.graph import Circuit
from interp import HookedModel
from interp.errors import InterpError

METHODS: dict[str, dict[str, Any]] = {"acdc": {}, "eap": {}, "eap-ig": {"steps": 5}, "node": {}}
"""The methods compared, with their options (everything else at its default)."""


DEFAULT_METHOD_MODELS = ("ioi-tiny", "induction-tiny", "greater-than-tiny", "hier-eq-tiny", "facts-tiny")
"""Zoo task models (no known circuit) on which the default selection's faithfulness is also measured."""


def ground_truth_models() -> list[str]:
    """The hand-set induction model, then the zoo models whose card names a true circuit."""
    return [handset.NAME, *(n for n in interp.zoo.names() if interp.zoo.card(n).get("circuit"))]


@dataclass(frozen=True, eq=False)
class Case:
    """A model with a known circuit, its task and its ablation."""

    name: str
    model: HookedModel
    card: dict
    task: str
    truth: Circuit
    ablation: str
    """The model's own ablation: the card's `ablation`, else corrupted (as `interp circuit`)."""

    def data(self, n: int, seed: int = 0) -> CircuitData:
        """`n` examples of the task (with the card's task options), logit-difference metric."""
        return task_data(self.model, self.card, CircuitOptions(task=self.task, n=n, seed=seed))


def load_case(name: str) -> Case:
    """The ground-truth model `name` (see `ground_truth_models`) with its task and true circuit."""
    model, card, folder = load_model(name)
    if not card or not card.get("circuit"):
        raise InterpError(f"model {name!r} has no known circuit (its card names none)")
    tasks = card.get("tasks")
    if not tasks:
        raise InterpError(f"the card of {name!r} names no task")
    task = next(iter(tasks))  # a list of names, or a dict name -> options
    ablation = default_ablation(card)
    return Case(name, model, card, task, true_circuit(card, folder), ablation)


def _kwargs(options: Mapping[str, Any], ablation: str) -> dict[str, Any]:
    return {"ablation": ablation, **options}


def true_edge_ranks(scores: EdgeScores, truth: Circuit) -> dict[str, float]:
    """Rank (1 = largest |score|, ties averaged) of each true edge among all (src, dst) pairs."""
    pairs = pair_scores(scores)
    values = sorted((abs(s) for s in pairs.values()), reverse=True)
    ranks = {}
    for edge in truth.edges:
        v = abs(pairs[edge.pair])
        above = sum(x > v for x in values)
        tied = sum(x == v for x in values)
        ranks[f"{edge.src}->{edge.dst}"] = above + (tied + 1) / 2
    return ranks


def accuracy(
    case: Case,
    methods: Mapping[str, Mapping[str, Any]] = METHODS,
    n: int = 64,
    seeds: Iterable[int] = (0, 1, 2),
    ablation: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per method: edge and node AUROC per seed and their means (and min, max), with the ROC curve
    and true-edge ranks of the first seed. `ablation` defaults to the case's own."""
    ablation = check_ablation(ablation or case.ablation)
    seeds = list(seeds)
    if not seeds:
        raise InterpError("accuracy needs at least one data seed")
    out: dict[str, dict[str, Any]] = {
        m: {"edge_auroc": [], "node_auroc": [], "clean_metric": [], "ablated_metric": []} for m in methods
    }
    for i, seed in enumerate(seeds):
        data = case.data(n, seed)
        for method, options in methods.items():
            torch.manual_seed(seed)
            scores = discover(case.model, data, method, **_kwargs(options, ablation))
            row = out[method]
            row["edge_auroc"].append(edge_auroc(scores, case.truth))
            row["node_auroc"].append(node_auroc(scores, case.truth))
            row["clean_metric"].append(scores.metadata.get("clean_metric"))
            row["ablated_metric"].append(scores.metadata.get("ablated_metric"))
            if i == 0:
                fpr, tpr = roc_curve(scores, case.truth)
                row["roc"] = {"fpr": fpr, "tpr": tpr}
                row["true_edge_ranks"] = true_edge_ranks(scores, case.truth)
                row["n_edges"] = len(pair_scores(scores))
                if "forward_passes" in scores.metadata:
                    row["forward_passes"] = scores.metadata["forward_passes"]
    for row in out.values():
        for key in ("edge_auroc", "node_auroc"):
            row[f"{key}_mean"] = statistics.fmean(row[key])
            row[f"{key}_min"], row[f"{key}_max"] = min(row[key]), max(row[key])
    return out


def selection_faithfulness(
    name: str,
    methods: Mapping[str, Mapping[str, Any]] = METHODS,
    n: int = 64,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per method: faithfulness and completeness of the circuit `interp circuit` exports by default
    (same selection, widening included) on zoo or hand-set model `name` with its card's task and
    ablation, and the edges kept."""
    model, card, _ = load_model(name)
    tasks = (card or {}).get("tasks")
    if not tasks:
        raise InterpError(f"the card of {name!r} names no task")
    task = next(iter(tasks))
    ablation = default_ablation(card)
    out: dict[str, dict[str, Any]] = {}
    for method, options in methods.items():
        opts = CircuitOptions(task=task, method=method, n=n, seed=seed)
        data = task_data(model, card, opts)
        torch.manual_seed(seed)
        scores = discover(model, data, method, **_kwargs(options, ablation))
        circuit = report_circuit(scores, opts)
        f = faithfulness(model, data, circuit, ablation=ablation, graph=scores.graph)
        out[method] = {
            "faithfulness": f.faithfulness,
            "completeness": f.completeness,
            "n_edges": f.n_edges,
            "n_graph_edges": f.n_graph_edges,
            "widened": circuit.metadata["selection"]["widened"],
        }
    return out


def forward_backward(model: HookedModel, data: CircuitData) -> None:
    """The cost unit: the model's own forward on the clean batch, the metric, and its gradient with
    respect to every trainable parameter (a training step without the optimizer)."""
    params = [p for p in model.hf_model.parameters() if p.requires_grad]
    if not params:
        raise InterpError("the model has no trainable parameters to time a backward pass with")
    metric = data.metric(model(data.clean.to(model.device)))
    torch.autograd.grad(metric, params)


@torch.no_grad()
def forward_only(model: HookedModel, data: CircuitData) -> None:
    """The model's own forward on the clean batch, without gradients."""
    model(data.clean.to(model.device))


def _seconds(fn: Callable[[], Any], device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def timing(
    case: Case,
    methods: Mapping[str, Mapping[str, Any]] = METHODS,
    n: int = 64,
    seed: int = 0,
    repeats: int = 7,
    ablation: str | None = None,
) -> dict[str, Any]:
    """Seconds of each method and of the baseline on one batch, interleaved (module docstring).

    Returns `{"n", "seed", "ablation", "repeats", "forward_backward_seconds", "forward_seconds",
    "methods": {name: {"seconds", "ratio", "ratios", "ratio_of_minima"}}}`: medians, `ratios` per
    round, and the fastest method run over the fastest baseline run (the least disturbed estimate).
    """
    if repeats < 1:
        raise InterpError(f"repeats must be >= 1, got {repeats}")
    ablation = check_ablation(ablation or case.ablation)
    data = case.data(n, seed)
    device = case.model.device
    baseline = partial(forward_backward, case.model, data)
    runs = {m: partial(discover, case.model, data, m, **_kwargs(o, ablation)) for m, o in methods.items()}
    for fn in (baseline, *runs.values()):  # warm-up: allocator, lazy imports, attention switch
        fn()
    base: list[float] = []
    fwd: list[float] = []
    took: dict[str, list[float]] = {m: [] for m in runs}
    ratios: dict[str, list[float]] = {m: [] for m in runs}
    order = list(runs)
    for i in range(repeats):
        before = _seconds(baseline, device)
        base.append(before)
        for method in order if i % 2 == 0 else order[::-1]:
            s = _seconds(runs[method], device)
            after = _seconds(baseline, device)
            base.append(after)
            took[method].append(s)
            ratios[method].append(2 * s / (before + after))
            before = after
        fwd.append(_seconds(partial(forward_only, case.model, data), device))
    return {
        "n": n,
        "seed": seed,
        "ablation": ablation,
        "repeats": repeats,
        "forward_backward_seconds": statistics.median(base),
        "forward_seconds": statistics.median(fwd),
        "methods": {
            m: {
                "seconds": statistics.median(took[m]),
                "ratio": statistics.median(ratios[m]),
                "ratios": ratios[m],
                "ratio_of_minima": min(took[m]) / min(base),
            }
            for m in runs
        },
    }
