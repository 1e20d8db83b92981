"""Concept-explanation methods x concepts on `concepts-tiny`: each method's estimated individual causal
concept effect (ICaCE) scored against the true counterfactual effect.

Writes experiments/results/concept_explanations.json and .png, and prints the tables as markdown.

Model and data: the zoo model `concepts-tiny` (2-layer GPT-2 trained on the `concepts` task: templated
restaurant reviews with four concepts, food / service / price / ambiance, three values each; the label
rule ignores ambiance). Methods fit on `--n-train` concept-labelled training reviews (seed + 1); the
explained edits are every test review (`--n-test`, seed) x concept x other value of that concept,
100 x 4 x 2 = 800 edits by default. The true ICaCE of an edit is N(x_{C=c'}) - N(x) on the exact
structural counterfactual text (the model's output distribution over the three label tokens).

Rows: every method registered in `circuits.concepts.registry` (`circuits.concepts.explain`), i.e. INLP,
LEACE, CausaLM, the causal proxy model, steering, a DAS subspace per concept, the SAE feature that
tracks each concept, and the matched-example baseline. Scores per concept (`circuits.concepts.scoring`):
ICaCE error (mean L2 distance between estimated and true effect vectors, lower is better),
order-faithfulness (fraction of pairwise orderings of the true effects the estimate keeps; 0.5 is
chance) and direction agreement (fraction of edits whose estimate has positive cosine with the truth).
Both are computed over edits whose true effect exceeds 0.01, so on ambiance (true effect ~0.006) they
rest on a handful of edits and mean little.

Variants (same edits, same training sample, scored the same way, not in the main table): the DAS
subspace used by setting (INLP/LEACE-style) instead of shifting, and the SAE rows with more features
per concept and with `set`. The JSON also records, for the SAE feature chosen for each concept, how
much each concept explains of its activation (correlation ratio eta^2): its selectivity.

About 4-5 minutes on one CPU thread (the causal proxy model's training is half of it).

OMP_WAIT_POLICY=PASSIVE python experiments/concept_explanations.py [--methods ...] [--no-variants]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

import interp  # noqa: E402
from circuits.concepts import registry  # noqa: E402
from circuits.concepts.explain import ConceptReport, ExplainConfig, explain, resolve_model  # noqa: E402
from circuits.concepts.methods import sae as sae_method  # noqa: E402
from circuits.concepts.methods.common import concept_labels  # noqa: E402
from circuits.concepts.scoring import clean, metrics  # noqa: E402
from interp import io  # noqa: E402
from interp.tasks.concepts import CONCEPTS, Concepts  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "concept_explanations"
MODEL = "concepts-tiny"
logger = logging.getLogger("concept_explanations")

# (row name, registered method, config overrides): the variants scored beside the main table.
VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("das, set", "das", {"intervention": "set"}),
    ("das, 4 dims", "das", {"subspace": 4}),
    ("sae, set", "sae", {"intervention": "set"}),
    ("sae, top 2", "sae", {"n_features": 2}),
    ("sae, top 4", "sae", {"n_features": 4}),
    ("sae, top 8", "sae", {"n_features": 8}),
    ("sae, top 32", "sae", {"n_features": 32}),
)


def provenance(name: str) -> dict[str, Any]:
    """Which weights were used: a zoo model's card essentials (zoo models get retrained)."""
    card = interp.zoo.card(name)
    return {
        "name": name,
        "zoo": True,
        "accuracy": card.get("accuracy"),
        "n_params": card.get("n_params"),
        "recipe_steps": card.get("recipe", {}).get("steps"),
    }


def run_variants(model: interp.HookedModel, report: ConceptReport, train: Any) -> dict[str, Any]:
    """Score each variant on the report's edits against the same true effects."""
    out: dict[str, Any] = {}
    for row, name, overrides in VARIANTS:
        method = registry.get(name)
        cfg = dataclasses.replace(method.config(), **overrides)
        start = time.perf_counter()
        estimate = method.estimate(model, report.edits, train, cfg)
        score = metrics(estimate, report.true, report.edits)
        out[row] = {
            "method": name,
            "config": overrides,
            "icace_error": clean(score["icace_error"]),
            "seconds": round(time.perf_counter() - start, 2),
            "per_concept": {c: {k: clean(v) for k, v in s.items()} for c, s in score["per_concept"].items()},
        }
        logger.info("%s: ICaCE error %.4f", row, score["icace_error"])
    return out


def sae_selectivity(model: interp.HookedModel, train: Any) -> dict[str, Any]:
    """For the feature the `sae` method picks per concept: eta^2 of its activation with every concept.

    Retrains the method's SAE with its default (seeded) config, so the features are the same ones.
    """
    cfg = sae_method.Config()
    sae, hook, x = sae_method.load_or_fit(model, train, cfg)
    with torch.no_grad():
        z = sae.encode(x).float()  # [n, d_sae]
    ratios = {
        c: sae_method.correlation_ratio(z, concept_labels(train, c), len(train.task.values[c]))
        for c in CONCEPTS
    }
    out: dict[str, Any] = {"hook": hook, "d_sae": sae.cfg.d_sae, "k": sae.cfg.k, "features": {}}
    for concept in CONCEPTS:
        feature = int(ratios[concept].argmax())
        out["features"][concept] = {
            "feature": feature,
            "eta2": {c: round(float(ratios[c][feature]), 4) for c in CONCEPTS},
            "fires_on": round(float((z[:, feature] > 0).float().mean()), 4),
        }
    return out


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def tables(result: dict[str, Any]) -> str:
    """Markdown: ICaCE error per concept; order-faithfulness / direction agreement; variants; SAE features."""
    rep = result["report"]
    concepts = list(rep["true_effect"])
    beats = rep["beats_baseline"]
    lines = [
        "ICaCE error (mean L2 distance to the true effect; lower is better)",
        "",
        "| method | " + " | ".join(concepts) + " | all | beats matched on every concept |",
        "|---|" + "---|" * (len(concepts) + 2),
        "| (true effect, mean L2) | "
        + " | ".join(_fmt(rep["true_effect"][c]) for c in concepts)
        + " | - | - |",
    ]
    for name, m in rep["methods"].items():
        cells = [_fmt(m["per_concept"][c]["icace_error"]) for c in concepts] + [_fmt(m["icace_error"])]
        mark = "baseline" if name == registry.BASELINE else ("yes" if beats.get(name) else "no")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mark} |")
    lines += [
        "",
        "Order-faithfulness / direction agreement (edits with true effect > 0.01)",
        "",
        "| method | " + " | ".join(concepts) + " |",
        "|---|" + "---|" * len(concepts),
    ]
    for name, m in rep["methods"].items():
        cells = [
            f"{_fmt(m['per_concept'][c]['order_faithfulness'], 2)} / {_fmt(m['per_concept'][c]['direction_agreement'], 2)}"
            for c in concepts
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result.get("variants"):
        lines += ["", "Variants (ICaCE error)", "", "| variant | " + " | ".join(concepts) + " | all |"]
        lines.append("|---|" + "---|" * (len(concepts) + 1))
        for row, v in result["variants"].items():
            cells = [_fmt(v["per_concept"][c]["icace_error"]) for c in concepts] + [_fmt(v["icace_error"])]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    if result.get("sae_features"):
        sel = result["sae_features"]
        lines += [
            "",
            f"SAE feature chosen per concept (TopK, {sel['d_sae']} latents, k {sel['k']}, {sel['hook']} at END): "
            "eta^2 of its activation with each concept",
            "",
            "| concept | feature | " + " | ".join(CONCEPTS) + " |",
            "|---|---|" + "---|" * len(CONCEPTS),
        ]
        for concept, f in sel["features"].items():
            lines.append(
                f"| {concept} | {f['feature']} | " + " | ".join(_fmt(f["eta2"][c]) for c in CONCEPTS) + " |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=registry.names(), choices=registry.names())
    parser.add_argument("--n-train", type=int, default=1000, help="concept-labelled training reviews")
    parser.add_argument("--n-test", type=int, default=100, help="test reviews (x 4 concepts x 2 edits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-variants", action="store_true", help="skip the variants and SAE selectivity")
    parser.add_argument("--out", type=Path, default=OUT, help="output path without suffix")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    model = resolve_model(MODEL)
    task = Concepts()
    train = task.sample(args.n_train, seed=args.seed + 1)  # what `explain` would draw
    test = task.sample(args.n_test, seed=args.seed)
    cfg = ExplainConfig(methods=tuple(args.methods), n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    report = explain(model, cfg, task=task, train=train, test=test)
    result: dict[str, Any] = {
        "model": provenance(MODEL),
        "task": "concepts",
        "versions": io.package_versions(),
        "threads": torch.get_num_threads(),
        "report": report.to_dict(),
    }
    if not args.no_variants:
        result["variants"] = run_variants(model, report, train)
        result["sae_features"] = sae_selectivity(model, train)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["table"] = tables(result)
    io.atomic_write_json(args.out.with_suffix(".json"), result)
    report.plot(args.out.with_suffix(".png"))
    print(result["table"])
    print(f"\ntotal {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
