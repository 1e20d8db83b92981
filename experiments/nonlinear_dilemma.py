"""The non-linear representation dilemma on zoo models: IIA of linear DAS and of non-linear alignment
maps of growing capacity, on the trained model and on a randomly initialised copy of it.

"The Non-Linear Representation Dilemma" (Sutter et al. 2025): with powerful enough alignment maps
even a randomly initialised network "implements" the algorithm (high IIA), so an alignment found
with an unconstrained map says nothing by itself. Here, per case (model, variable, location):
- linear DAS: a k-dimensional rotation (`SearchConfig(method="das")`);
- non-linear maps: `circuits.abstraction.CouplingFlow` (`method="nonlinear"`, one coupling block,
  two tanh hidden layers of width `hidden` = 2, 16, 256 per coupling MLP; `--full`: 2, 4, 16, 64,
  256), warm-started from 500 steps of DAS; capacity is its trainable parameter count;
- each on the trained zoo model and on `random_control(model, seed=0)` (same architecture, fresh
  initialisation), with the same data and settings.
IIA is measured on 1,024 held-out counterfactuals (the training IIA on 2,048 training pairs is in the
JSON too: the gap is memorisation). All maps train on the same 65,536 counterfactual pairs, batch
128, Adam (lr 1e-2; the couplings 1e-3).

Cases: `hier-eq-tiny`, variable `left`, at the last layer's residual stream at the final position
(`blocks.1.hook_resid_post@END`, which has seen the whole prompt). `--full` adds `left` at
`blocks.0.hook_resid_post@X`, where the trained model computes it, and the SIIT ground-truth
`hier-eq-siit` at its final position, and trains the non-linear maps longer (6,000 steps instead of
4,000; DAS always 2,000).

Writes experiments/results/nonlinear_dilemma_quick.json and .png (IIA against map parameters, trained
and random lines per case); `--full` writes nonlinear_dilemma.{json,png}, the README's numbers. About
7 minutes on one CPU thread; `--full` about 45.

OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python experiments/nonlinear_dilemma.py [--full]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

import interp  # noqa: E402
from circuits.abstraction import (  # noqa: E402
    Location,
    SearchConfig,
    accuracy,
    counterfactuals,
    high_level,
    random_control,
    train_map,
)
from circuits.abstraction.das import evaluate_map  # noqa: E402
from circuits.abstraction.maps import n_parameters  # noqa: E402
from interp.io import atomic_write_json, package_versions, save_figure  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "nonlinear_dilemma"
logger = logging.getLogger("nonlinear_dilemma")
SEED = 0


@dataclass(frozen=True)
class Case:
    model: str
    variable: str
    location: str
    subspace: int = 1


QUICK = (Case("hier-eq-tiny", "left", "blocks.1.hook_resid_post@END"),)
FULL = QUICK + (
    Case("hier-eq-tiny", "left", "blocks.0.hook_resid_post@X"),
    Case("hier-eq-siit", "left", "blocks.1.hook_resid_post@END"),
)
HIDDEN = (2, 16, 256)
"""Widths of the non-linear maps' coupling MLPs (their capacity axis); `--full` adds 4 and 64."""
HIDDEN_FULL = (2, 4, 16, 64, 256)


@dataclass(frozen=True)
class Budget:
    n_train: int = 65_536
    n_test: int = 1024
    n_train_eval: int = 2048
    batch_size: int = 128
    das_steps: int = 2000
    warm_start_steps: int = 500
    nonlinear_steps: int = 4000


def configs(budget: Budget, k: int, hidden: tuple[int, ...]) -> list[tuple[str, SearchConfig]]:
    """(label, config) of every map, linear first."""
    common = dict(
        subspace=k, batch_size=budget.batch_size, n_train=budget.n_train, n_test=budget.n_test, seed=SEED
    )
    out = [("DAS", SearchConfig(method="das", steps=budget.das_steps, **common))]
    for h in hidden:
        cfg = SearchConfig(
            method="nonlinear", steps=budget.nonlinear_steps, hidden=h, blocks=1,
            warm_start_steps=budget.warm_start_steps, **common,
        )  # fmt: skip
        out.append((f"nonlinear h={h}", cfg))
    return out


def run_case(case: Case, budget: Budget, hidden: tuple[int, ...]) -> dict[str, Any]:
    model = interp.load(case.model)
    tm = high_level(interp.zoo.card(case.model)["tasks"][0])
    control = random_control(model, SEED)
    loc = Location.parse(case.location)
    train = counterfactuals(tm, [case.variable], budget.n_train, seed=SEED)
    test = counterfactuals(tm, [case.variable], budget.n_test, seed=SEED + 7919)
    seen = train.subset(torch.arange(min(budget.n_train_eval, budget.n_train)))
    entry: dict[str, Any] = {
        **asdict(case),
        "task": tm.name,
        "task_accuracy": {"trained": accuracy(model, test), "random": accuracy(control, test)},
        "label_majority": _majority(test.labels),
        "maps": [],
    }
    for label, cfg in configs(budget, case.subspace, hidden):
        row: dict[str, Any] = {"map": label, "config": _config(cfg)}
        for which, net in (("trained", model), ("random", control)):
            t0 = time.perf_counter()
            torch.manual_seed(SEED)
            amap = train_map(net, train, case.variable, loc, cfg)
            row[which] = {
                "iia": evaluate_map(net, test, case.variable, loc, amap),
                "train_iia": evaluate_map(net, seen, case.variable, loc, amap),
                "seconds": time.perf_counter() - t0,
            }
            row["parameters"] = n_parameters(amap)
            logger.info("%s %s %s %s: %s", case.model, case.location, label, which, row[which])
        entry["maps"].append(row)
    return entry


def _majority(labels: torch.Tensor) -> float:
    """IIA of always predicting the commonest counterfactual label (the chance line)."""
    return torch.unique(labels, return_counts=True)[1].max().item() / labels.numel()


def _config(cfg: SearchConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["temperature"] = list(d["temperature"])
    return d


# ---- output --------------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    cases = results["cases"]
    labels = [m["map"] for m in cases[0]["maps"]]
    params = [f"{m['map']} ({m['parameters']:,} params)" for m in cases[0]["maps"]]
    lines = [
        "| model | variable @ location | weights | " + " | ".join(params) + " |",
        "|---|---|---|" + "---|" * len(labels),
    ]
    for c in cases:
        for which in ("trained", "random"):
            cells = " | ".join(f"{m[which]['iia']:.3f}" for m in c["maps"])
            lines.append(f"| {c['model']} | {c['variable']} @ {c['location']} | {which} | {cells} |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Test IIA against map parameters (log scale), trained and random lines, one panel per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = results["cases"]
    fig, axes = plt.subplots(1, len(cases), figsize=(5.2 * len(cases), 4), squeeze=False)
    for ax, c in zip(axes[0], cases, strict=True):
        xs = [m["parameters"] for m in c["maps"]]
        for which, color in (("trained", "tab:blue"), ("random", "tab:red")):
            ys = [m[which]["iia"] for m in c["maps"]]
            ax.plot(xs[1:], ys[1:], marker="o", color=color, label=f"{which}: non-linear")
            ax.plot(
                xs[:1],
                ys[:1],
                marker="s",
                markersize=9,
                linestyle="",
                color=color,
                label=f"{which}: linear DAS",
            )
            train_ys = [m[which]["train_iia"] for m in c["maps"]]
            ax.plot(
                xs[1:], train_ys[1:], linestyle=":", color=color, alpha=0.6, label=f"{which}: training pairs"
            )
        for m in c["maps"][1:]:
            ax.annotate(m["map"].split()[-1], (m["parameters"], m["random"]["iia"]), fontsize=7,
                        textcoords="offset points", xytext=(0, -11), ha="center")  # fmt: skip
        ax.axhline(
            c["label_majority"], color="grey", linewidth=0.8, linestyle="--", label="chance (majority label)"
        )
        ax.set_xscale("log")
        ax.set_ylim(0.4, 1.02)
        ax.set_xlabel("alignment-map parameters")
        ax.set_ylabel("IIA (held-out counterfactuals)")
        ax.set_title(f"{c['model']}: {c['variable']} @ {c['location']}", fontsize=9)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--full", action="store_true", help="all cases and longer training (the README numbers)"
    )
    parser.add_argument("--out", type=Path, default=None, help="output path without suffix")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(SEED)
    out = args.out or (OUT if args.full else OUT.with_name(OUT.name + "_quick"))
    budget = Budget(nonlinear_steps=6000) if args.full else Budget()
    hidden = HIDDEN_FULL if args.full else HIDDEN
    results: dict[str, Any] = {
        "setting": "full" if args.full else "quick",
        "budget": asdict(budget),
        "hidden": hidden,
        "seed": SEED,
        "versions": package_versions(),
        "cases": [],
    }
    start = time.perf_counter()
    for case in FULL if args.full else QUICK:
        results["cases"].append(run_case(case, budget, hidden))
    results["seconds"] = time.perf_counter() - start
    results["table"] = table(results)
    atomic_write_json(out.with_suffix(".json"), results)
    plot(results, out.with_suffix(".png"))
    print(results["table"])
    print(f"total {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
