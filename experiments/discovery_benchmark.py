"""ACDC, EAP, EAP-IG and node attribution on every model whose circuit is known: AUROC against the
true circuit, and wall time in units of one forward+backward pass.

Writes experiments/results/discovery_benchmark.json and .png, and prints the tables as Markdown.

Models: `circuits.discovery.benchmark.ground_truth_models()`, the hand-set induction model
(`handset-induction`) and the zoo's SIIT models (`greater-than-siit`, `hier-eq-siit`), each on its
card's task. Every method runs with the options in `benchmark.METHODS` (EAP-IG: 5 steps; ACDC:
threshold 0.05 of the clean-minus-ablated metric) and the logit-difference metric.

Accuracy: edge AUROC (a pair's q/k/v channels merged) and node AUROC (heads and MLPs) against the
card's circuit, averaged over `--seeds` batches of `--n` examples, for the model's own ablation (the
card's `ablation`, else `corrupted`, as `interp circuit` does) and for each of `--ablations`. The
targets are judged on the model's own ablation.

Cost: on one batch of `--timing-n` examples, each method and the baseline (the model's own forward,
the metric and its gradient with respect to every parameter) timed alternately, `--repeats` rounds;
a method's cost is the median over rounds of its seconds over the mean of the baseline runs just
before and just after it (`benchmark.timing`).
Set OMP_NUM_THREADS to pin the thread count (recorded in the JSON).

Default method: on every ground-truth model and the zoo task models (`benchmark.DEFAULT_METHOD_MODELS`),
the faithfulness of the circuit `interp circuit` exports by default with each method (top 20 edges,
widened to an embed-to-logits path when needed; ACDC: the edges it keeps), data seed 0. The method
with the highest mean is the CLI's default.

Targets: EAP-IG mean edge AUROC >= 0.9; EAP at most 2x and EAP-IG at most (steps + 1)x a
forward+backward on every model.

OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python experiments/discovery_benchmark.py [--models ...]
"""

from __future__ import annotations

from interp.threads import apply_thread_policy

apply_thread_policy()  # the CLI's thread and allocator policy, before torch is imported

import argparse  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from circuits.discovery import benchmark  # noqa: E402
from circuits.discovery.data import ABLATIONS  # noqa: E402
from interp.io import atomic_write_json, package_versions, save_figure  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "discovery_benchmark"
LABELS = {"acdc": "ACDC", "eap": "EAP", "eap-ig": "EAP-IG", "node": "node attribution"}
logger = logging.getLogger("discovery_benchmark")


def run_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Accuracy under each ablation and cost under the model's own, for one model."""
    case = benchmark.load_case(name)
    ablations = list(dict.fromkeys([case.ablation, *args.ablations]))
    entry: dict[str, Any] = {
        "task": case.task,
        "device": str(case.model.device),
        "ablation": case.ablation,
        "true_edges": [f"{e.src}->{e.dst}" for e in case.truth.edges],
        "accuracy": {},
    }
    for ablation in ablations:
        t0 = time.perf_counter()
        acc = benchmark.accuracy(case, benchmark.METHODS, args.n, args.seeds, ablation)
        entry["accuracy"][ablation] = acc
        logger.info(
            "%s %s (%.1f s): %s",
            name,
            ablation,
            time.perf_counter() - t0,
            ", ".join(f"{m} {r['edge_auroc_mean']:.3f}/{r['node_auroc_mean']:.3f}" for m, r in acc.items()),
        )
    entry["timing"] = benchmark.timing(case, benchmark.METHODS, args.timing_n, repeats=args.repeats)
    logger.info(
        "%s cost: %s",
        name,
        ", ".join(f"{m} {r['ratio']:.2f}x" for m, r in entry["timing"]["methods"].items()),
    )
    return entry


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, judged on each model's own ablation."""
    models = results["models"]
    steps = benchmark.METHODS["eap-ig"]["steps"]
    ig = [e["accuracy"][e["ablation"]]["eap-ig"]["edge_auroc_mean"] for e in models.values()]
    eap_cost = {n: e["timing"]["methods"]["eap"]["ratio"] for n, e in models.items()}
    ig_cost = {n: e["timing"]["methods"]["eap-ig"]["ratio"] for n, e in models.items()}
    mean_ig = statistics.fmean(ig)
    return {
        "eap_ig_mean_edge_auroc": {"value": mean_ig, "target": 0.9, "met": mean_ig >= 0.9},
        "eap_cost": {"per_model": eap_cost, "target": 2.0, "met": max(eap_cost.values()) <= 2.0},
        "eap_ig_cost": {
            "per_model": ig_cost,
            "target": steps + 1.0,
            "met": max(ig_cost.values()) <= steps + 1.0,
        },
    }


def default_method(results: dict[str, Any]) -> dict[str, Any]:
    """Mean faithfulness of the default selection per method over the models; the best method."""
    rows = results["selection_faithfulness"]
    methods = list(benchmark.METHODS)
    means = {m: statistics.fmean(r[m]["faithfulness"] for r in rows.values()) for m in methods}
    return {"mean_faithfulness": means, "best": max(means, key=means.get)}


def selection_table(results: dict[str, Any]) -> str:
    methods = list(benchmark.METHODS)
    lines = [
        "| model | " + " | ".join(LABELS[m] for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for name, row in results["selection_faithfulness"].items():
        cells = [
            f"{row[m]['faithfulness']:.3f} ({row[m]['n_edges']}{'*' if row[m]['widened'] else ''})"
            for m in methods
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = results["default_method"]["mean_faithfulness"]
    lines.append("| mean | " + " | ".join(f"{means[m]:.3f}" for m in methods) + " |")
    return "\n".join(lines)


def tables(results: dict[str, Any]) -> str:
    """Markdown: AUROC (edge / node, mean over seeds) per model and ablation; cost per model."""
    methods = list(benchmark.METHODS)
    steps = benchmark.METHODS["eap-ig"]["steps"]
    head = [LABELS[m] + (f" ({steps} steps)" if m == "eap-ig" else "") for m in methods]
    lines = [
        "| model | ablation | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for name, entry in results["models"].items():
        for ablation, acc in entry["accuracy"].items():
            own = " (own)" if ablation == entry["ablation"] else ""
            cells = [f"{acc[m]['edge_auroc_mean']:.3f} / {acc[m]['node_auroc_mean']:.3f}" for m in methods]
            lines.append(f"| {name} | {ablation}{own} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| model | batch | forward+backward | " + " | ".join(head) + " |",
        "|---|---|---|" + "---|" * len(methods),
    ]
    for name, entry in results["models"].items():
        t = entry["timing"]
        cells = [f"{t['methods'][m]['ratio']:.2f}x" for m in methods]
        base = f"{1000 * t['forward_backward_seconds']:.1f} ms"
        lines.append(f"| {name} | {t['n']} | {base} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """ROC curves per model (own ablation, first seed) and the cost of each method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"].items())
    methods = list(benchmark.METHODS)
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(4.2 * (len(models) + 1), 4.8), squeeze=False)
    for ax, (name, entry) in zip(axes[0], models, strict=False):
        acc = entry["accuracy"][entry["ablation"]]
        for m in methods:
            roc = acc[m]["roc"]
            ax.step(
                roc["fpr"], roc["tpr"], where="post", label=f"{LABELS[m]} ({acc[m]['edge_auroc'][0]:.3f})"
            )
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(
            f"{name}\n{entry['task']}, {entry['ablation']} ablation, seed {results['config']['seeds'][0]}"
        )
        ax.set_xlabel("false-positive rate (edges)")
        ax.set_ylabel("true-positive rate")
        ax.legend(fontsize=8, loc="lower right")
    ax = axes[0][-1]
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        ratios = [e["timing"]["methods"][m]["ratio"] for _, e in models]
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(models))]
        bars = ax.bar(xs, ratios, width, label=LABELS[m])
        ax.bar_label(bars, [f"{r:.1f}" for r in ratios], fontsize=6)
    steps = benchmark.METHODS["eap-ig"]["steps"]
    for y, label, color in ((2.0, "EAP target", "C1"), (steps + 1.0, "EAP-IG target", "C2")):
        ax.axhline(y, color=color, linewidth=0.8, linestyle="--", label=f"{label} ({y:g}x)")
    ax.set_yscale("log")
    ax.set_ylim(0.8, 1.6 * max(e["timing"]["methods"][m]["ratio"] for _, e in models for m in methods))
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100) if t <= ax.get_ylim()[1]]
    ax.set_yticks(ticks, [f"{t}x" for t in ticks])
    ax.minorticks_off()
    ax.set_xticks(range(len(models)), [n for n, _ in models], fontsize=8)
    ax.set_ylabel("wall time / one forward+backward")
    ax.set_title(
        f"cost, batch {results['config']['timing_n']} (median of {results['config']['repeats']} rounds)"
    )
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    names = benchmark.ground_truth_models()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=names, choices=names)
    parser.add_argument("--n", type=int, default=64, help="examples per batch for AUROC")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="data seeds for AUROC")
    parser.add_argument(
        "--ablations",
        nargs="*",
        default=["corrupted", "resample"],
        choices=ABLATIONS,
        help="ablations scored besides each model's own",
    )
    parser.add_argument("--timing-n", type=int, default=64, help="examples in the timed batch")
    parser.add_argument("--repeats", type=int, default=21, help="interleaved timing rounds")
    parser.add_argument(
        "--default-models",
        nargs="*",
        default=list(benchmark.DEFAULT_METHOD_MODELS),
        help="zoo task models on which the default selection's faithfulness is measured too",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="output path without suffix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    results: dict[str, Any] = {
        "config": {
            "models": args.models,
            "methods": benchmark.METHODS,
            "n": args.n,
            "seeds": args.seeds,
            "ablations": args.ablations,
            "timing_n": args.timing_n,
            "repeats": args.repeats,
            "metric": "logit_diff",
            "threads": torch.get_num_threads(),
        },
        "versions": package_versions(),
        "models": {},
    }
    for name in args.models:
        results["models"][name] = run_model(name, args)
    results["targets"] = targets(results)
    results["selection_faithfulness"] = {}
    for name in dict.fromkeys([*args.models, *args.default_models]):
        t0 = time.perf_counter()
        results["selection_faithfulness"][name] = benchmark.selection_faithfulness(name, n=args.n)
        logger.info("%s default selection (%.1f s)", name, time.perf_counter() - t0)
    results["default_method"] = default_method(results)
    results["seconds"] = time.perf_counter() - start
    results["table"] = tables(results) + "\n\n" + selection_table(results)
    atomic_write_json(args.out.with_suffix(".json"), results)
    plot(results, args.out.with_suffix(".png"))
    print(results["table"])
    print()
    for key, t in results["targets"].items():
        value = t.get("value", t.get("per_model"))
        shown = (
            f"{value:.3f}"
            if isinstance(value, float)
            else ", ".join(f"{k} {v:.2f}x" for k, v in value.items())
        )
        print(f"{key}: {shown} (target {t['target']:g}): {'met' if t['met'] else 'NOT met'}")
    print(
        f"default method (highest mean faithfulness of the default selection): {results['default_method']['best']}"
    )
    print(f"total {results['seconds']:.0f} s")
    return results


if __name__ == "__main__":
    main()
