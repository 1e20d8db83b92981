"""`interp align` as a function: search alignments over a grid of locations, write result.json and figures.

>>> opts = AlignOptions(hook="attn.hook_z", heads=True, positions=("END",), search=SearchConfig(subspace=8, steps=100))
>>> payload = align_report("greater-than-siit", "greater_than", "das", "out/align", opts)
>>> payload["best"]  # {"location": "blocks.0.attn.hook_z[H1]@END", "iia": 0.99, "control_iia": 0.02, "gap": 0.97}
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from circuits.abstraction.das import search
from circuits.abstraction.data import counterfactuals
from circuits.abstraction.highlevel.base import TaskModel
from circuits.abstraction.highlevel.registry import high_level
from circuits.abstraction.iia import IIAResult
from circuits.abstraction.plots import bars
from circuits.abstraction.sites import Location, check
from circuits.configs import AlignOptions
from interp.errors import InterpError
from interp.hooked import HookedModel
from interp.io import atomic_dir, check_out_dir, write_result
from interp.loading import check_task_tokenizer, load

logger = logging.getLogger(__name__)


def task_model_for(model: HookedModel, task: str) -> TaskModel:
    """The high-level model of `task`, after checking that `model` reads task prompts."""
    tm = high_level(task)
    check_task_tokenizer(model, f"alignment on {task}: this model", required=True)
    return tm


def locations_for(model: HookedModel, tm: TaskModel, opts: AlignOptions) -> list[Location]:
    """The locations `opts` asks for, each checked against the model and the task's positions."""
    probe = counterfactuals(tm, [opts.variable or tm.causal.intermediates[0]], 2, seed=opts.search.seed)
    if opts.locations:
        locs = [Location.parse(label) for label in opts.locations]
    else:
        positions = list(opts.positions) if opts.positions else list(probe.base_positions)
        heads: list[int | None] = list(range(model.cfg.n_heads)) if opts.heads else [None]
        locs = [
            Location(f"blocks.{layer}.{opts.hook}", p, h)
            for layer in range(model.cfg.n_layers)
            for p in positions
            for h in heads
        ]
    for loc in locs:
        check(model, loc, probe.base_positions)
    return locs


def align_report(
    model_name: str | HookedModel,
    task: str,
    method: str,
    out: str | Path,
    opts: AlignOptions = AlignOptions(),
    force: bool = False,
) -> dict:
    """Run the search and write `out/result.json`, `out/iia.png`, `out/control_iia.png`, `out/iia_vs_control.png`.

    result.json holds the inputs, config, seed, versions, per-location IIA with the random-model
    control and their gap, and `best: {location, iia, control_iia, gap}`.
    """
    check_out_dir(out, force)  # fail before the search, not after
    model = model_name if isinstance(model_name, HookedModel) else load(str(model_name))
    tm = task_model_for(model, task)
    variable = opts.variable or tm.causal.intermediates[0]
    if variable not in tm.causal.variables or variable in tm.causal.inputs:
        raise InterpError(
            f"{tm.name} has no intermediate or output variable {variable!r}; try {', '.join(tm.causal.intermediates + tm.causal.outputs)}"
        )
    cfg = dataclasses.replace(opts.search, method=method)
    locs = locations_for(model, tm, opts)
    torch.manual_seed(cfg.seed)
    result = search(model, tm, variable, locs, cfg)
    name = model_name if isinstance(model_name, str) else type(model.hf_model).__name__
    with atomic_dir(out, force=force) as tmp:
        trained = IIAResult(variable, result.locations, result.iia, cfg.n_test)
        figures = ["iia.png"]
        trained.plot(tmp / "iia.png", title=f"{method} IIA of {variable} ({name})")
        if cfg.control:
            control = IIAResult(
                variable, result.locations, tuple(c or 0.0 for c in result.control_iia), cfg.n_test
            )
            control.plot(tmp / "control_iia.png", title=f"{method} IIA of {variable}, random-init control")
            groups = {
                str(loc): {"trained": v, "random init": c or 0.0}
                for loc, v, c in zip(result.locations, result.iia, result.control_iia, strict=True)
            }
            bars(groups, f"{method}: trained vs random-init control", tmp / "iia_vs_control.png")
            figures += ["control_iia.png", "iia_vs_control.png"]
        payload = write_result(
            tmp,
            command="align",
            inputs={"model": str(name), "task": tm.name, "variable": variable, "method": method},
            config={**dataclasses.asdict(opts), "search": result.to_dict()["config"]},
            seed=cfg.seed,
            metrics={"best": result.best(), "map_parameters": result.map_parameters},
            best=result.best(),
            locations=result.table(),
            figures=figures,
        )
    return payload
