"""Checks `interp sae train` runs before any work starts: numbers, device, output folder, hooks, and
that `--resume` continues the same run.

The inputs of a run are written to `OUT/run_inputs.json` when it starts; `--resume` compares the
new inputs with them and names every difference, so a run never continues another run's
checkpoint (another seed) or reports settings it was not trained with.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from interp.errors import InterpError
from interp.io import atomic_write_json, check_out_dir
from interp.names import HookPoint
from interp.validation import check_device, check_positive

logger = logging.getLogger(__name__)

INPUTS_FILENAME = "run_inputs.json"
# may change between a run and its resumption: where it runs and how it is evaluated
_FREE_ON_RESUME = frozenset({"device", "eval_windows", "cache_dir"})


def check_numbers(inputs: Any) -> None:
    """Every count >= 1 (seed >= 0), rates finite and positive."""
    for name, minimum in (
        ("tokens", 1),
        ("expansion", 1),
        ("batch_size", 1),
        ("eval_windows", 1),
        ("k", 1),
        ("context_len", 2),
        ("seed", 0),
        ("sparsity_coef", 0),
    ):
        check_positive(getattr(inputs, name), f"--{name.replace('_', '-')}", minimum)
    check_positive(inputs.lr, "--lr", 1e-12)
    check_device(inputs.device)


def check_hooks(hooks: list[str], model: Any, context_len: int) -> None:
    """Refuse hooks an SAE cannot read: unknown names, and ones that are not a vector per token."""
    names = model.hook_names()
    for hook in hooks:
        point = HookPoint.try_parse(hook)
        if point is not None and not point.per_token:  # a position x position map
            raise InterpError(
                f"--hook {hook} is an attention pattern [batch, head, q_pos, k_pos], not one vector per token, so an "
                "SAE cannot read it; use the head outputs (attn.hook_z) or hook_attn_out of that layer"
            )
        if hook not in names:
            model.select(hook)  # raises with the closest names
    limit = max_context(model)
    if limit is not None and context_len > limit:
        raise InterpError(f"--context-len {context_len} is longer than the model's {limit} positions")


def max_context(model: Any) -> int | None:
    from interp.validation import max_positions

    return max_positions(model.hf_model.config)


def default_context_len(model: Any, wanted: int = 64) -> int:
    """64 tokens per window, or the model's maximum positions when shorter."""
    limit = max_context(model)
    return wanted if limit is None else min(wanted, limit)


def prepare_out(out: str | Path, inputs: Any, force: bool, resume: bool) -> Path:
    """Check `--out` before any work: refuse a non-empty folder without --force/--resume, and on
    --resume refuse inputs that differ from the run's (naming each); with --force, clear it."""
    out = check_out_dir(out, force=force, resume=resume)
    if force and resume:
        raise InterpError("--force starts the run afresh and --resume continues it; pass one of them")
    if resume:
        check_same_run(out, inputs)
    elif force and out.is_dir() and any(out.iterdir()):
        logger.warning("--force: replacing the run in %s", out)
        shutil.rmtree(out)
    return out


def check_same_run(out: Path, inputs: Any) -> None:
    recorded = _recorded_inputs(out)
    if recorded is None:
        if (out / "checkpoints").is_dir():
            raise InterpError(
                f"--resume: {out} has checkpoints but no record of the run's inputs ({INPUTS_FILENAME}); "
                "resume is refused rather than risk continuing another run; start afresh with --force"
            )
        return  # nothing to resume: a fresh start
    now = asdict(inputs)
    differ = [
        f"{name} {recorded.get(name)!r} -> {now[name]!r}"
        for name in (f.name for f in fields(inputs))
        if name not in _FREE_ON_RESUME
        and recorded.get(name) != now[name]
        and not (name == "context_len" and now[name] is None)  # the default resolves as it did before
    ]
    if differ:
        raise InterpError(
            f"--resume: the run in {out} was started with other inputs ({'; '.join(differ)}); "
            "resume with the same flags, or start afresh with --force"
        )


def _recorded_inputs(out: Path) -> dict | None:
    for name in (INPUTS_FILENAME, "result.json"):
        path = out / name
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise InterpError(f"--resume: {path} is corrupt ({exc}); start afresh with --force") from None
            return data if name == INPUTS_FILENAME else data.get("inputs")
    return None


def record_inputs(out: Path, inputs: Any) -> None:
    """Write `OUT/run_inputs.json` (what `check_same_run` compares against)."""
    atomic_write_json(out / INPUTS_FILENAME, asdict(inputs))
