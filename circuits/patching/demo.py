"""The patching stage of `interp demo`: residual-stream and head patching heatmaps on the demo's task.

Registered under the `interp.demo_stages` entry-point group as
`30_patching = "circuits.patching.demo:stage"`. It takes the demo's `CachedRun`, keeps the prompts that share the first
prompt's layout (so a position is one slot in every prompt), runs one batched sweep over
`resid_pre` (layer x position) and `z` (layer x head), and writes two heatmaps.
"""

from __future__ import annotations

from circuits.patching.activation import patching_sweep
from circuits.patching.batches import same_layout
from circuits.results import position_labels
from interp.demo import CachedRun, StageResult

FIGURES = ("patching_resid_pre.png", "patching_heads.png")


def stage(run: CachedRun) -> StageResult[None]:
    """Patch the clean residual stream and head outputs into the corrupted run, one site at a time.

    Example:
        >>> result = stage(run)  # doctest: +SKIP
        >>> result.metrics["resid_pre_peak"]  # doctest: +SKIP
    """
    inputs = run.inputs
    batch = same_layout(inputs.batch, 8 if inputs.quick else 16)
    named = {k: int(v[0]) for k, v in batch.positions.items()}
    labels = position_labels(inputs.model.tokenizer.convert_ids_to_tokens(batch.clean[0].tolist()), named)
    results = patching_sweep(
        inputs.model,
        batch.clean,
        batch.corrupted,
        batch.logit_diff,
        {"resid_pre": "position", "z": "head"},
        position_labels=labels,
    )
    resid, heads = results["resid_pre"], results["z"]
    resid.plot(inputs.out / FIGURES[0], title=f"{inputs.model_name}: restoring resid_pre (denoising)")
    heads.plot(inputs.out / FIGURES[1], title=f"{inputs.model_name}: restoring one head's output")
    for figure, result in zip(FIGURES, (resid, heads), strict=True):  # the numbers, for `interp view`
        result.save(inputs.out / figure.replace(".png", ".json"))
    (resid_site, resid_value), (head_site, head_value) = resid.top(1)[0], heads.top(1)[0]
    metrics = {
        "prompts": len(batch),
        "metric_clean": resid.meta["metric_clean"],
        "metric_corrupted": resid.meta["metric_corrupted"],
        "resid_pre_peak": {"site": resid_site, "value": resid_value},
        "head_peak": {"site": head_site, "value": head_value},
        "forward_passes": resid.meta["forward_passes"],
        "patches": resid.values.numel() + heads.values.numel(),
    }
    text = (
        f"Activation patching on {len(batch)} prompts of one layout (logit difference {metrics['metric_clean']:.2f} "
        f"clean, {metrics['metric_corrupted']:.2f} corrupted): {metrics['patches']} patches in "
        f"{metrics['forward_passes']} forward passes. Restoring the residual stream at layer {resid_site['layer']}, "
        f"position `{resid_site['position']}` recovers {resid_value:.0%} of the clean logit difference; "
        f"the most important single head is L{head_site['layer']}H{head_site['head']} ({head_value:.0%})."
    )
    return StageResult("Activation patching", metrics, FIGURES, text)
