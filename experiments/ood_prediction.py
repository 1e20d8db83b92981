"""Predicting whether a zoo model is right on shifted (out-of-distribution) prompts from its aligned
causal variables: counterfactual simulation and value probing against an output-confidence baseline.

Method (`circuits.abstraction.ood`, after "Internal Causal Mechanisms Robustly Predict Language Model
OOD Behaviors"): each model's intermediate variables are first aligned in distribution; then prompts
are shifted by inserting filler words (1, 2 or 4 of the task's filler words, split evenly) at one
insertion point, and each predictor's AUROC at separating the prompts the model gets right from those
it gets wrong is measured:
- counterfactual simulation: the shifted prompt is the source of an interchange of each aligned
  variable into 8 in-distribution bases; score = how often the output is what the high-level model
  predicts with the prompt's true value (did the mechanism compute the right value?);
- value probing: a logistic probe from the aligned features to the variable's value, fitted in
  distribution; score = its probability of the prompt's true value;
- confidence: the model's own output confidence (`TaskModel.confidence`), the output-only baseline.

Alignments. SIIT ground-truth models (`*-siit`) use the alignment their card ships (whole vectors at
the known circuit nodes). The other models get one from linear DAS (k-dimensional subspace, `DAS`
below): every layer's `hook_resid_post` at every named position is ranked by whole-vector IIA
(`sweep`), DAS is trained at the best `DAS.candidates` of them, and the one with the best held-out
IIA is kept; its location and IIA are in the JSON and the table. A variable no location carries
(IIA near chance) still gets its best location, and the predictors built on it are then at chance.

Insertion points: right after `<bos>` and before each named position (the same index as after `<bos>`
is skipped). AUROC needs both right and wrong answers: rows where either class has fewer than
`MIN_CLASS` prompts are reported without AUROCs. The summary averages each predictor over a model's
rows that have AUROCs.

Models: every zoo model whose task has a high-level model with intermediate variables
(hier-eq-siit, hier-eq-tiny, greater-than-siit, greater-than-tiny, ioi-tiny, facts-tiny);
induction-tiny and concepts-tiny have none, shakespeare-tiny has no task.

Writes experiments/results/ood_prediction.json and .png. About 3-4 minutes on one CPU thread:

OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python experiments/ood_prediction.py [--models hier-eq-siit ...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import interp  # noqa: E402
from circuits.abstraction import (  # noqa: E402
    Alignment,
    Location,
    OODConfig,
    SearchConfig,
    TaskModel,
    counterfactuals,
    grid,
    high_level,
    iia,
    predict_ood,
    sweep,
    train_map,
)
from circuits.abstraction.das import evaluate_map  # noqa: E402
from interp.io import atomic_write_json, package_versions, save_figure  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "ood_prediction"
logger = logging.getLogger("ood_prediction")
PREDICTORS = ("counterfactual_simulation", "value_probing", "confidence")
MIN_CLASS = 20
"""Fewest right (and wrong) prompts a row needs for its AUROCs to be reported."""


@dataclass(frozen=True)
class DAS:
    """How a model without a shipped alignment gets one (linear DAS at every resid_post x position)."""

    subspace: dict[str, int]
    """Subspace size per variable (a variable with many values needs more than one dimension)."""
    candidates: int = 3
    """Locations (best by whole-vector IIA) DAS is trained at."""
    steps: int = 600
    n_train: int = 1024
    n_test: int = 512
    lr: float = 1e-2


# None: the card's alignment (SIIT ground truth); otherwise DAS settings.
MODELS: dict[str, DAS | None] = {
    "hier-eq-siit": None,
    "hier-eq-tiny": DAS({"left": 1, "right": 1}),
    "greater-than-siit": None,
    "greater-than-tiny": DAS({"year": 8}),
    "ioi-tiny": DAS({"dup_first": 1}),
    "facts-tiny": DAS({"entity": 16, "rel": 2}, steps=800),
}

SHIFTS = (1, 2, 4)
N_SHIFTED = 600
"""Shifted prompts per insertion point (split evenly between SHIFTS)."""
SEED = 0


# ---- alignments ------------------------------------------------------------------------------------
def card_alignments(name: str, tm: TaskModel) -> list[dict[str, Any]]:
    """The alignment a ground-truth model's card ships (intermediate variables only), with its IIA."""
    card = interp.zoo.card(name)
    rows = []
    for var, label in card["alignment"].items():
        if var in tm.causal.intermediates:
            iia_card = card.get("iia", {}).get(var)
            rows.append(
                {"variable": var, "location": label, "subspace": "all", "iia": iia_card, "basis": None}
            )
    return rows


def das_alignments(model: interp.HookedModel, tm: TaskModel, das: DAS) -> list[dict[str, Any]]:
    """For each intermediate variable: rank every resid_post location by whole-vector IIA (on training
    pairs), train DAS at the best `das.candidates`, keep the best on validation pairs, report its IIA on
    held-out test pairs."""
    rows = []
    for var in tm.causal.intermediates:
        k = das.subspace[var]
        cfg = SearchConfig(
            method="das", subspace=k, steps=das.steps, n_train=das.n_train, n_test=das.n_test,
            lr=das.lr, control=False, seed=SEED,
        )  # fmt: skip
        train = counterfactuals(tm, [var], das.n_train, seed=SEED)
        valid = counterfactuals(tm, [var], das.n_test, seed=SEED + 1)
        test = counterfactuals(tm, [var], das.n_test, seed=SEED + 7919)
        ranked = sweep(model, train, var, grid(model, train, "hook_resid_post"))
        order = sorted(range(len(ranked.iia)), key=lambda i: -ranked.iia[i])[: das.candidates]
        best: dict[str, Any] | None = None
        for loc in (ranked.locations[i] for i in order):
            torch.manual_seed(SEED)
            amap = train_map(model, train, var, loc, cfg)
            score = evaluate_map(model, valid, var, loc, amap)
            logger.info("%s DAS k=%d at %s: validation IIA %.3f", var, k, loc, score)
            if best is None or score > best["valid_iia"]:
                best = {"variable": var, "location": str(loc), "subspace": k, "valid_iia": score,
                        "whole_vector_iia": ranked.iia[ranked.locations.index(loc)],
                        "basis": amap.basis().detach().clone()}  # fmt: skip
        assert best is not None
        best["iia"] = iia(model, test, to_alignment(best))  # the basis as a fixed alignment, held out
        rows.append(best)
    return rows


def to_alignment(row: dict[str, Any]) -> Alignment:
    return Alignment(row["variable"], Location.parse(row["location"]), row["basis"])


# ---- OOD prediction ------------------------------------------------------------------------------------
def insertion_points(tm: TaskModel) -> list[str | None]:
    """After <bos> (None) and before every named position that is not the first word."""
    rng = np.random.default_rng(SEED)
    _, positions = tm.encode_many([tm.causal.sample_input(rng) for _ in range(64)])
    return [None] + [p for p, idx in positions.items() if bool((idx != 1).any())]


def run_model(name: str, das: DAS | None) -> dict[str, Any]:
    model = interp.load(name)
    card = interp.zoo.card(name)
    tm = high_level(card["tasks"][0])
    t0 = time.perf_counter()
    rows = card_alignments(name, tm) if das is None else das_alignments(model, tm, das)
    align_seconds = time.perf_counter() - t0
    alignments = [to_alignment(r) for r in rows]
    entry: dict[str, Any] = {
        "task": tm.name,
        "alignment_source": "card (SIIT ground truth)" if das is None else "linear DAS",
        "das": None if das is None else asdict(das),
        "alignments": [{k: v for k, v in r.items() if k != "basis"} for r in rows],
        "align_seconds": align_seconds,
        "shifts": [],
    }
    for before in insertion_points(tm):
        cfg = OODConfig(shifts=SHIFTS, before=before, n=N_SHIFTED, seed=SEED)
        t0 = time.perf_counter()
        result = predict_ood(model, tm, alignments, cfg)
        n_right = int(result.correct.sum())
        n_wrong = int(result.correct.numel()) - n_right
        enough = min(n_right, n_wrong) >= MIN_CLASS
        row = {
            "insert": "after <bos>" if before is None else f"before {before}",
            "n": int(result.correct.numel()),
            "accuracy": result.accuracy,
            "right": n_right,
            "wrong": n_wrong,
            "auroc": {k: (v if enough else None) for k, v in result.auroc.items()},
            "auroc_raw": result.auroc,
            "seconds": time.perf_counter() - t0,
        }
        logger.info("%s %s: accuracy %.3f AUROC %s", name, row["insert"], row["accuracy"], row["auroc"])
        entry["shifts"].append(row)
    entry["mean_auroc"] = {
        p: _mean([r["auroc"][p] for r in entry["shifts"] if r["auroc"][p] is not None]) for p in PREDICTORS
    }
    entry["rows_with_auroc"] = sum(r["auroc"]["confidence"] is not None for r in entry["shifts"])
    return entry


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else None


# ---- output --------------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def table(results: dict[str, Any]) -> str:
    """Every (model, insertion point) row."""
    lines = [
        "| model | alignment (IIA) | filler inserted | OOD accuracy | CF simulation | value probing | confidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in results["models"].items():
        aligned = "; ".join(
            f"{a['variable']} @ {a['location']}" + (f" ({a['iia']:.2f})" if a["iia"] is not None else "")
            for a in e["alignments"]
        )
        for r in e["shifts"]:
            cells = [_fmt(r["auroc"][p]) for p in PREDICTORS]
            lines.append(
                f"| {name} | {aligned} | {r['insert']} | {r['accuracy']:.2f} | " + " | ".join(cells) + " |"
            )
            aligned = '"'
    return "\n".join(lines)


def summary(results: dict[str, Any]) -> str:
    """Per model: mean AUROC over the insertion points with both right and wrong answers."""
    lines = [
        "| model | alignment | rows | CF simulation | value probing | confidence |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in results["models"].items():
        m = e["mean_auroc"]
        cells = " | ".join(_fmt(m[p]) for p in PREDICTORS)
        lines.append(f"| {name} | {e['alignment_source']} | {e['rows_with_auroc']} | {cells} |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """AUROC of each predictor per (model, insertion point) row that has AUROCs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        (f"{name}\n{r['insert']} ({r['accuracy']:.2f})", r["auroc"])
        for name, e in results["models"].items()
        for r in e["shifts"]
        if r["auroc"]["confidence"] is not None
    ]
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(rows)), 5))
    width = 0.27
    for i, p in enumerate(PREDICTORS):
        xs = [j + (i - 1) * width for j in range(len(rows))]
        ax.bar(xs, [a[p] for _, a in rows], width, label=p.replace("_", " "))
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([label for label, _ in rows], fontsize=7, rotation=60, ha="right")
    ax.set_ylabel("AUROC (right vs wrong on shifted prompts)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Predicting OOD correctness: model, insertion point (OOD accuracy)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", type=Path, default=OUT, help="output path without suffix")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(SEED)
    results: dict[str, Any] = {
        "config": {"shifts": SHIFTS, "n_shifted": N_SHIFTED, "seed": SEED, "min_class": MIN_CLASS,
                   "ood": asdict(OODConfig(shifts=SHIFTS, n=N_SHIFTED, seed=SEED))},
        "versions": package_versions(),
        "models": {},
    }  # fmt: skip
    start = time.perf_counter()
    for name in args.models:
        results["models"][name] = run_model(name, MODELS[name])
    results["seconds"] = time.perf_counter() - start
    results["table"] = table(results)
    results["summary"] = summary(results)
    atomic_write_json(args.out.with_suffix(".json"), results)
    plot(results, args.out.with_suffix(".png"))
    print(results["table"])
    print()
    print(results["summary"])
    print(f"total {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
