"""Interchange intervention training (IIT) and strict IIT (SIIT): make chosen components implement
the variables of a high-level model, and (SIIT) make every other component irrelevant.

Algorithm (Geiger et al. 2022, "Inducing Causal Structure for Interpretable Neural Networks";
Gupta et al. 2024, InterpBench), per step on a batch of (base, source) input pairs:
  1. Source run (with gradients), recording every node the step needs. Behaviour loss: cross-entropy
     of the source's own high-level output.
  2. IIT: pick a high-level variable V; run the base with V's node set to the source's value at the
     aligned position; loss: cross-entropy against the high-level output after interchanging V.
  3. SIIT: run the base with the nodes *outside* the circuit resample-ablated (all of them on a
     fraction `ablate_all` of the steps, a random subset otherwise; every position, values from the
     source run, detached); loss: the behaviour loss of the base, so those nodes must not matter.
  4. loss = behaviour_weight * (1) + r * iit_weight * (2) + strict_weight * (3), where r is 0 for
     the first `ramp / 2` of training and rises to 1 by `ramp`; AdamW with warm-up and cosine decay.

Nodes are heads (`blocks.{l}.attn.hook_z` slices) and MLPs (`blocks.{l}.hook_mlp_out`), named as in
`circuits.abstraction.circuit`.

    >>> stats = train_iit(model, tm, {"left": "L0.H0", "right": "L0.H2", "output": "MLP1"}, IITConfig(steps=1500))
    >>> evaluate_circuit(model, tm, {"left": "L0.H0", ...}, circuit_nodes=["L0.H0", "L0.H2", "MLP1"])
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from circuits.abstraction.circuit import all_nodes, node_location, split_node
from circuits.abstraction.data import counterfactuals
from circuits.abstraction.highlevel.base import TaskModel
from circuits.abstraction.iia import accuracy, iia
from circuits.abstraction.sites import Alignment, Location
from interp.errors import InterpError
from interp.hooked import HookedModel
from interp.interventions import Ablate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IITConfig:
    """Optimisation and loss weights of (S)IIT training."""

    steps: int = 800
    """Optimiser steps."""
    batch_size: int = 128
    """(base, source) pairs per step."""
    lr: float = 1e-2
    """Peak learning rate (AdamW, linear warm-up then cosine decay to 10%)."""
    warmup: int = 1
    """Warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay on matrices."""
    max_grad_norm: float = 0.0
    """Clip the gradient norm to this (0: no clipping; clipping at 1 slows these tiny models a lot)."""
    behavior_weight: float = 1.0
    """Weight of the plain task loss."""
    iit_weight: float = 1.0
    """Weight of the interchange-intervention loss."""
    strict_weight: float = 1.0
    """Weight of the SIIT loss on non-circuit ablations (0: plain IIT)."""
    ablate_prob: float = 0.8
    """SIIT: each non-circuit node is ablated with this probability (at least one per step) ..."""
    ablate_all: float = 0.0
    """... except on this fraction of the steps, where every non-circuit node is ablated at once
    (single ablations keep each node irrelevant on its own; joint ones, all of them together)."""
    position: str = "END"
    """Named position where the variables are aligned, unless the alignment says `node@POSITION`."""
    supervise: tuple[str, ...] = ()
    """Intermediate variables also supervised directly at their aligned positions (an auxiliary
    behaviour loss, as in the zoo's hier-eq-tiny recipe: the output alone is an XNOR of them,
    which gradient descent finds slowly). Their values must be answer values of the task model."""
    pool: int = 8192
    """Input settings sampled once and paired at random each step."""
    ramp: float = 0.3
    """The IIT weight is 0 for the first half of this fraction of the steps and rises linearly to 1
    over its second half. (Early on an interchange barely changes the output, so its labels would
    only teach the model to ignore its input; meanwhile the behaviour loss and SIIT, which starts at
    once, build the features in the circuit's nodes.)"""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise InterpError("IITConfig needs steps >= 1 and batch_size >= 2")
        if not 0.0 < self.ablate_prob <= 1.0 or not 0.0 <= self.ablate_all <= 1.0:
            raise InterpError("IITConfig.ablate_prob must be in (0, 1] and ablate_all in [0, 1]")
        if not 0.0 <= self.ramp < 1.0:
            raise InterpError("IITConfig.ramp must be in [0, 1)")


def _lr(step: int, cfg: IITConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _replace(loc: Location, pos_base: Tensor | None, pos_source: Tensor | None, source: Tensor):
    """Hook fn that sets `loc` (at one position per example, or everywhere when pos_base is None)."""

    def hook(act: Tensor, name: str) -> Tensor:
        out = act.clone()
        rows = torch.arange(act.shape[0], device=act.device)
        if pos_base is None:
            if loc.head is None:
                return source
            out[:, :, loc.head] = source[:, :, loc.head]
        elif loc.head is None:
            out[rows, pos_base] = source[rows, pos_source]
        else:
            out[rows, pos_base, loc.head] = source[rows, pos_source, loc.head]
        return out

    return hook


def non_circuit(model: HookedModel, circuit_nodes: Sequence[str], position: str = "END") -> list[Location]:
    """Locations (position unused) of every head and MLP not in `circuit_nodes`."""
    inner = [n for n in all_nodes(model.cfg.n_layers, model.cfg.n_heads) if n not in ("embed", "logits")]
    return [node_location(n, position) for n in inner if n not in circuit_nodes]


def train_iit(
    model: HookedModel,
    tm: TaskModel,
    alignment: Mapping[str, str],
    cfg: IITConfig = IITConfig(),
    circuit_nodes: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Train `model` in place so that `alignment` (variable -> node) holds; SIIT when
    `cfg.strict_weight > 0` (circuit = `circuit_nodes`, default the aligned nodes).

    Returns `train_seconds` and the final smoothed losses.
    """
    for var in alignment:
        if var not in tm.causal.variables or var in tm.causal.inputs:
            raise InterpError(f"{var!r} is not a non-input variable of the {tm.name} model")
    locs = {v: node_location(*split_node(n, cfg.position)) for v, n in alignment.items()}
    for v in cfg.supervise:
        if v not in locs:
            raise InterpError(f"supervised variable {v!r} has no aligned node; alignment: {', '.join(locs)}")
    nodes = [split_node(n)[0] for n in (circuit_nodes or alignment.values())]
    outside = non_circuit(model, nodes, cfg.position)
    rng = np.random.default_rng([seed, 17])
    pool = [tm.causal.sample_input(rng) for _ in range(cfg.pool)]
    full = [tm.causal.run(s) for s in pool]
    ids, positions = tm.encode_many(pool)
    ids, end = ids.to(model.device), positions["END"].to(model.device)
    at = {v: positions[loc.position].to(model.device) for v, loc in locs.items()}  # aligned positions
    vocab = model.cfg.d_vocab
    hf = model.hf_model
    decay = [p for p in hf.parameters() if p.ndim >= 2]
    rest = [p for p in hf.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    variables, hooks_needed = (
        list(locs),
        list(dict.fromkeys([loc.hook for loc in locs.values()] + [o.hook for o in outside])),
    )

    def behaviour(logits: Tensor, rows: np.ndarray) -> Tensor:
        """Task loss of `rows` of the pool: the output at END, plus any supervised variables."""
        loss = _ce(logits, end[rows], tm.targets([full[i][tm.output] for i in rows], vocab))
        for v in cfg.supervise:
            loss = loss + _ce(logits, at[v][rows], tm.targets([full[i][v] for i in rows], vocab))
        return loss

    ema: dict[str, float] = {}
    start = time.perf_counter()
    hf.train()
    for step in tqdm(
        range(cfg.steps), desc="SIIT" if cfg.strict_weight else "IIT", disable=not progress, leave=False
    ):
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        b = rng.integers(len(pool), size=cfg.batch_size)
        s = rng.integers(len(pool), size=cfg.batch_size)
        var = variables[step % len(variables)]
        logits, cache = model.run_with_cache(ids[s], names=hooks_needed, grad=True)
        losses = {"behavior": behaviour(logits, s)}
        cf = [tm.causal.run(pool[i], {var: full[j][var]})[tm.output] for i, j in zip(b, s, strict=True)]
        loc = locs[var]
        with model.hooks({loc.hook: _replace(loc, at[var][b], at[var][s], cache[loc.hook])}):
            losses["iit"] = _ce(model(ids[b]), end[b], tm.targets(cf, vocab))
        ramp = min(1.0, max(0.0, 2 * step / (cfg.ramp * cfg.steps) - 1)) if cfg.ramp else 1.0
        total = cfg.behavior_weight * losses["behavior"] + ramp * cfg.iit_weight * losses["iit"]
        if cfg.strict_weight > 0 and outside:
            chosen = _ablated(outside, rng, cfg)
            hooks = [(o.hook, _replace(o, None, None, cache[o.hook].detach())) for o in chosen]
            with model.hooks(hooks):
                losses["siit"] = behaviour(model(ids[b]), b)
            total = total + cfg.strict_weight * losses["siit"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(hf.parameters(), cfg.max_grad_norm)
        opt.step()
        for k, v in losses.items():
            ema[k] = v.item() if k not in ema else 0.95 * ema[k] + 0.05 * v.item()
        if step % 50 == 0:
            logger.debug(
                "step %d loss %.4f ema %s", step, total.item(), {k: round(v, 4) for k, v in ema.items()}
            )
    hf.eval()
    return {"train_seconds": time.perf_counter() - start, **{f"loss_{k}": v for k, v in ema.items()}}


def _ablated(outside: list[Location], rng: np.random.Generator, cfg: IITConfig) -> list[Location]:
    """The non-circuit nodes one SIIT step resample-ablates."""
    if rng.random() < cfg.ablate_all:
        return outside
    return [o for o in outside if rng.random() < cfg.ablate_prob] or [
        outside[int(rng.integers(len(outside)))]
    ]


def _ce(logits: Tensor, end: Tensor, targets: Tensor) -> Tensor:
    rows = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits[rows, end].float(), targets.to(logits.device))


@torch.no_grad()
def evaluate_circuit(
    model: HookedModel,
    tm: TaskModel,
    alignment: Mapping[str, str],
    circuit_nodes: Sequence[str] | None = None,
    n: int = 1000,
    seed: int = 1,
    position: str = "END",
) -> dict:
    """Accuracy, IIA of each variable at its node, and accuracy with every non-circuit node
    resample-ablated (all of them at once, all positions, values from another example).

    Example:
        >>> evaluate_circuit(model, tm, {"left": "L0.H0", "right": "L0.H2", "output": "MLP1"})
        {'accuracy': 1.0, 'iia': {'left': 0.99, ...}, 'ablated_accuracy': 0.99, 'accuracy_drop': 0.01}
    """
    iias = {}
    for var, node in alignment.items():
        data = counterfactuals(tm, [var], n, seed=seed + len(iias))
        iias[var] = iia(model, data, Alignment(var, node_location(*split_node(node, position))))
    base = counterfactuals(tm, [next(iter(alignment))], n, seed=seed + 100)
    acc = accuracy(model, base)
    outside = non_circuit(model, [split_node(n)[0] for n in (circuit_nodes or alignment.values())], position)
    ablations = [
        Ablate(o.hook, kind="resample", heads=None if o.head is None else (o.head,), seed=seed)
        for o in outside
    ]
    logits = model.run_with_interventions(base.base_ids, ablations)
    rows = torch.arange(len(base))
    ablated = tm.correct(logits[rows, base.base_positions["END"]], base.base_outputs).float().mean().item()
    return {"accuracy": acc, "iia": iias, "ablated_accuracy": ablated, "accuracy_drop": acc - ablated}
