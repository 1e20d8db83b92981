"""Every registered SAE architecture at matched L0 on two residual streams; FVU and downstream loss vs L0.

Writes experiments/results/sae_architectures.json and .png.

Models (`--models`), each read at its middle residual stream `blocks.{n_layer // 2}.hook_resid_pre`:
- `shakespeare-tiny`, the zoo text LM: downstream metric is the CE loss recovered when the SAE is
  spliced in, (CE_zero - CE_sae) / (CE_zero - CE_clean), and KL(clean || spliced) per token.
- `minilm`, the real all-MiniLM-L6-v2 (BERT encoder). It has no LM head, so instead of CE the
  downstream metrics are on the final hidden state (`blocks.5.hook_resid_post`): its FVU with the SAE
  spliced in, and the final-state MSE recovered, 1 - MSE(spliced, clean) / MSE(zero-ablated, clean).

Data: `interp.data.shakespeare()`. Training activations come from the train split, one pass, kept in
memory and shuffled: 196,608 for shakespeare-tiny (192 steps of 1024, context 128, 8x expansion) and
98,304 for MiniLM (96 steps of 1024, context 64, 4x expansion). Evaluation uses the first windows of
the validation split: 48 x 128 = 6,144 tokens (shakespeare-tiny), 32 x 64 = 2,048 (MiniLM). g-SAE
selects with the next-token-loss gradient on the LM; MiniLM has no such loss, so there it is TopK.

Matching L0: architectures with `k` train at k = `--l0` (the batch-allocated ones with a faster
threshold average, see `BATCH_ALLOCATED`); the L1/L0-penalised ones (`relu`, `jumprelu`, `gated`)
train at a small grid of coefficients (JumpReLU: of initial thresholds), and the run whose evaluated
L0 is nearest `--l0` (in log space) is the matched one; every run is in the JSON and the plot. The
grids are calibrated for these short runs (`GRIDS`); other budgets need other grids.

OMP_WAIT_POLICY=PASSIVE python experiments/sae_architectures.py [--models shakespeare-tiny minilm]
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

import torch  # noqa: E402

import interp  # noqa: E402
import saes  # noqa: E402
from interp.data import shakespeare  # noqa: E402
from interp.errors import InterpError  # noqa: E402
from interp.io import atomic_write_json, save_figure  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "sae_architectures"
logger = logging.getLogger("sae_architectures")


@dataclass(frozen=True)
class Setting:
    """How one model is read and how much data its SAEs see."""

    expansion: int
    """d_sae / d_model."""
    train_tokens: int
    """Activations trained on (one pass)."""
    context_len: int
    """Tokens per window."""
    eval_windows: int
    """Validation windows evaluated on."""
    lr: float = 2e-3
    """Peak Adam learning rate (linear warm-up over 5% of the steps, decay over the last 20%)."""
    batch: int = 1024
    """Activations per step."""


SETTINGS = {
    "shakespeare-tiny": Setting(expansion=8, train_tokens=196_608, context_len=128, eval_windows=48),
    "minilm": Setting(expansion=4, train_tokens=98_304, context_len=64, eval_windows=32),
}

# Runs of the penalised architectures per model, (SAEConfig overrides, TrainConfig overrides), in
# normalised units (inputs of mean norm sqrt(d_model)), calibrated by a pilot to bracket L0 16 in these
# short runs. JumpReLU's thresholds move little in ~100-200 steps, so its initial threshold is the knob.
GRIDS: dict[str, dict[str, list[tuple[dict, dict]]]] = {
    "shakespeare-tiny": {
        "relu": [({}, {"sparsity_coef": c}) for c in (2.6, 3.2)],
        "gated": [({}, {"sparsity_coef": c}) for c in (4.0, 5.0)],
        "jumprelu": [({"jumprelu_init_threshold": t}, {"sparsity_coef": 1.0}) for t in (0.6, 0.8)],
    },
    "minilm": {
        "relu": [({}, {"sparsity_coef": c}) for c in (3.8, 4.6)],
        "gated": [({}, {"sparsity_coef": c}) for c in (6.5, 7.5)],
        "jumprelu": [({"jumprelu_init_threshold": t}, {"sparsity_coef": 1.0}) for t in (1.6, 1.9)],
    },
}

# Batch-allocated architectures learn an inference threshold as a moving average over steps; the
# default rate (0.01) leaves it short of its value after ~100 steps, so these short runs use 0.1.
BATCH_ALLOCATED = ("batchtopk", "mutual_choice", "feature_choice")


# ---- data and models ------------------------------------------------------------------------------
def middle_hook(model: interp.HookedModel) -> tuple[str, str]:
    """(middle residual hook, final residual hook) of a model."""
    n_layer = model.cfg.n_layers
    return f"blocks.{n_layer // 2}.hook_resid_pre", f"blocks.{n_layer - 1}.hook_resid_post"


def collect(
    model: interp.HookedModel, hook: str, s: Setting
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(training activations [train_tokens, d_model], their next-token-loss gradients or None for an
    encoder (g-SAE's selection signal), validation token windows [eval_windows, pos])."""
    lm = not model.cfg.is_encoder
    train = saes.ActivationStore(
        model, shakespeare("train"), hook, context_len=s.context_len, batch_size=s.batch,
        model_batch_size=32, max_tokens=s.train_tokens, with_grads=lm,
    )  # fmt: skip
    batches = list(train)  # shuffled
    acts = torch.cat([b[hook] for b in batches])  # [tokens, d_model]
    grads = torch.cat([b[f"{hook}:grad"] for b in batches]) if lm else None
    val = saes.ActivationStore(model, shakespeare("validation"), hook, context_len=s.context_len)
    return acts, grads, val.token_windows(s.eval_windows)


# ---- one run --------------------------------------------------------------------------------------
def runs_for(name: str, arch: str, l0: int) -> list[dict[str, Any]]:
    """SAEConfig and TrainConfig overrides of every run of `arch` on model `name`."""
    if arch in BATCH_ALLOCATED:  # their inference thresholds must settle within ~100 steps
        return [{"sae": {"k": l0, "threshold_momentum": 0.1}, "train": {}}]
    if saes.REGISTRY[arch].needs_k:
        return [{"sae": {"k": l0}, "train": {}}]
    return [{"sae": sae_kw, "train": train_kw} for sae_kw, train_kw in GRIDS[name][arch]]


def train(
    arch: str, run: dict[str, Any], acts: torch.Tensor, grads: torch.Tensor | None, hook: str, s: Setting
) -> Any:
    """Train one SAE on one pass over `acts` (g-SAE also reads `grads` when there are any)."""
    d_model = acts.shape[1]
    cfg = saes.SAEConfig(arch, d_in=d_model, d_sae=s.expansion * d_model, hook_in=hook, **run["sae"])
    steps = acts.shape[0] // s.batch
    tc = saes.TrainConfig(
        lr=s.lr,
        batch_size=s.batch,
        total_steps=steps,
        lr_warmup_steps=max(1, steps // 20),
        lr_decay_steps=steps // 5,
        sparsity_warmup_steps=steps // 10,
        dead_window_tokens=20 * s.batch,
        progress=False,
        **run["train"],
    )
    rows = [slice(i * s.batch, (i + 1) * s.batch) for i in range(steps)]
    if arch == "gsae" and grads is not None:
        return saes.Trainer(cfg, tc).fit((acts[r], None, grads[r]) for r in rows)
    return saes.Trainer(cfg, tc).fit(acts[r] for r in rows)


@torch.no_grad()
def final_state_metrics(
    model: interp.HookedModel, sae: Any, tokens: torch.Tensor, hook: str, final: str, batch: int = 16
) -> dict[str, float]:
    """Final hidden state with the SAE spliced in at `hook` (and zero-ablated) against the clean run."""
    err_sae = err_zero = sum_sq = 0.0
    total: torch.Tensor | None = None
    n = 0
    for start in range(0, tokens.shape[0], batch):
        chunk = tokens[start : start + batch]
        states = {}
        for mode in ("clean", "sae", "zero"):
            seen: dict[str, torch.Tensor] = {}

            def keep(act: torch.Tensor, name: str, seen: dict = seen) -> None:
                seen["h"] = act.float()

            def replace(act: torch.Tensor, name: str, mode: str = mode) -> torch.Tensor | None:
                if mode == "clean":
                    return None
                if mode == "zero":
                    return torch.zeros_like(act)
                return sae(act.reshape(-1, act.shape[-1]).float()).reshape(act.shape).to(act.dtype)

            with model.hooks({hook: replace, final: keep}):
                model(chunk)
            states[mode] = seen["h"].reshape(-1, seen["h"].shape[-1])  # [tokens, d_model]
        clean = states["clean"].double()
        err_sae += float((states["sae"].double() - clean).pow(2).sum())
        err_zero += float((states["zero"].double() - clean).pow(2).sum())
        sum_sq += float(clean.pow(2).sum())
        total = clean.sum(0) if total is None else total + clean.sum(0)
        n += clean.shape[0]
    variance = sum_sq - float(total.pow(2).sum()) / n
    return {"final_state_fvu": err_sae / variance, "final_state_mse_recovered": 1 - err_sae / err_zero}


def evaluate(model: interp.HookedModel, sae: Any, tokens: torch.Tensor, final: str) -> dict[str, Any]:
    metrics = dict(saes.evaluate(sae, model, tokens, n_browse=0).metrics)
    if model.cfg.is_encoder:
        metrics.update(final_state_metrics(model, sae, tokens, sae.cfg.hook_in, final))
    return metrics


# ---- the experiment --------------------------------------------------------------------------------
def run_model(name: str, archs: list[str], l0: int) -> dict[str, Any]:
    """Train and evaluate every run on one model; returns its JSON entry."""
    s = SETTINGS[name]
    model = interp.load(name)
    hook, final = middle_hook(model)
    t0 = time.perf_counter()
    acts, grads, tokens = collect(model, hook, s)
    entry: dict[str, Any] = {
        "model": provenance(name),
        "hook": hook,
        "final_hook": final,
        "d_model": acts.shape[1],
        "setting": asdict(s),
        "train_tokens": acts.shape[0],
        "eval_tokens": tokens.numel(),
        "activation_seconds": time.perf_counter() - t0,
        "language_model": not model.cfg.is_encoder,
        "gsae_gradients": grads is not None,
        "runs": [],
    }
    for arch in archs:
        for run in runs_for(name, arch, l0):
            t0 = time.perf_counter()
            torch.manual_seed(0)
            sae = train(arch, run, acts, grads, hook, s)
            seconds = time.perf_counter() - t0
            metrics = evaluate(model, sae, tokens, final)
            entry["runs"].append({"arch": arch, **run, "train_seconds": seconds, "metrics": metrics})
            logger.info("%s %s %s: %s", name, arch, run, _short(metrics))
    _mark_matched(entry["runs"], l0)
    return entry


def provenance(name: str) -> dict[str, Any]:
    """Which weights were used: a zoo model's card essentials (zoo models get retrained), or the name."""
    if name not in interp.zoo.names():
        return {"name": name}
    card = interp.zoo.card(name)
    recipe = card.get("recipe", {})
    return {"name": name, "zoo": True, "val_loss": card.get("val_loss"), "recipe_steps": recipe.get("steps")}


def _mark_matched(runs: list[dict[str, Any]], l0: int) -> None:
    by_arch: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_arch.setdefault(r["arch"], []).append(r)
    for group in by_arch.values():
        best = min(group, key=lambda r: abs(math.log(max(r["metrics"]["l0"], 1e-3) / l0)))
        for r in group:
            r["matched"] = r is best


def _short(m: dict[str, Any]) -> str:
    keys = ("l0", "fvu", "ce_loss_recovered", "kl_div", "final_state_fvu", "final_state_mse_recovered")
    return ", ".join(f"{k}={m[k]:.4g}" for k in keys if m.get(k) is not None)


def table(results: dict[str, Any]) -> str:
    """Markdown table of the matched runs."""
    lines = [
        "| model | arch | setting | L0 | FVU | dead | CE recovered | KL | final-state FVU | final MSE recovered |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["models"].items():
        for r in entry.get("runs", []):
            if not r["matched"]:
                continue
            m = r["metrics"]
            setting = ", ".join(f"{k}={v}" for k, v in {**r["sae"], **r["train"]}.items())
            cells = [m["l0"], m["fvu"], m["dead_fraction"], m.get("ce_loss_recovered"), m.get("kl_div")]
            cells += [m.get("final_state_fvu"), m.get("final_state_mse_recovered")]
            lines.append(f"| {name} | {r['arch']} | {setting} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def plot(results: dict[str, Any], path: Path) -> None:
    """FVU and the downstream metric against L0, one row per model, one marker per architecture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [(n, e) for n, e in results["models"].items() if e.get("runs")]
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    archs = sorted({r["arch"] for _, e in models for r in e["runs"]})
    markers = dict(zip(archs, "os^vD<>Pp*hX", strict=False))
    for row, (name, entry) in enumerate(models):
        down = "ce_loss_recovered" if entry["language_model"] else "final_state_mse_recovered"
        for col, key in enumerate(("fvu", down)):
            ax = axes[row][col]
            for arch in archs:
                pts = sorted(
                    (r["metrics"]["l0"], r["metrics"][key]) for r in entry["runs"] if r["arch"] == arch
                )
                if pts:
                    ax.plot(
                        *zip(*pts, strict=True), marker=markers[arch], label=arch, linestyle="-", alpha=0.8
                    )
            ax.axvline(results["target_l0"], color="grey", linewidth=0.8, linestyle=":")
            ax.set_xlabel("L0 (evaluated)")
            ax.set_ylabel(key.replace("_", " "))
            note = " (no LM head: final hidden state)" if col and not entry["language_model"] else ""
            ax.set_title(f"{name} {entry['hook']}{note}", fontsize=10)
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--archs", nargs="+", default=sorted(saes.REGISTRY), choices=sorted(saes.REGISTRY))
    parser.add_argument("--l0", type=int, default=16, help="target L0 (k of the TopK-style architectures)")
    parser.add_argument("--out", type=Path, default=OUT, help="output path without suffix")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    results: dict[str, Any] = {"target_l0": args.l0, "torch": torch.__version__, "models": {}}
    start = time.perf_counter()
    for name in args.models:
        try:
            results["models"][name] = run_model(name, args.archs, args.l0)
        except InterpError as exc:  # e.g. a zoo model not built yet
            logger.warning("skipping %s: %s", name, exc)
            results["models"][name] = {"skipped": str(exc)}
    results["seconds"] = time.perf_counter() - start
    results["table"] = table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out.with_suffix(".json"), results)
    plot(results, args.out.with_suffix(".png"))
    print(results["table"])
    print(f"total {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
