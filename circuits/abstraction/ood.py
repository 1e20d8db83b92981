"""Predicting out-of-distribution correctness from internal causal mechanisms.

Algorithm (Huang et al. 2025, "Internal Causal Mechanisms Robustly Predict Language Model
Out-of-Distribution Behaviors"), given aligned variables (`Alignment`s found in distribution):
  1. Draw shifted inputs (the task's prompts with `shift` filler words inserted after `<bos>`, or
     before a named position) and record whether the model is right on each (the label to predict).
  2. Counterfactual simulation: use each shifted input x as the *source* of an interchange of one
     aligned variable into `n_references` in-distribution bases; score(x) = fraction of those runs
     (over variables and bases) whose output is what the high-level model predicts with x's true
     value. A mechanism that computed the right value on x passes it on correctly.
  3. Value probing: fit a logistic-regression probe from the aligned features (the subspace
     coordinates, or the whole vector) to the variable's value in distribution; score(x) = the
     probe's probability of x's true value.
  4. Baseline: the model's output confidence (`TaskModel.confidence`).
  5. Each score's AUROC at separating right from wrong answers (Mann-Whitney, ties counted 1/2).
With several aligned variables the scores are averaged over variables.

    >>> result = predict_ood(model, tm, [Alignment("left", loc, basis)], OODConfig(shifts=(1, 2)))
    >>> result.auroc  # {"counterfactual_simulation": 0.9, "value_probing": 0.8, "confidence": 0.6}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from circuits.abstraction.data import Counterfactuals
from circuits.abstraction.highlevel.base import TaskModel
from circuits.abstraction.iia import predictions
from circuits.abstraction.sites import Alignment, gather, position_index
from circuits.stats import auroc
from interp.errors import InterpError
from interp.hooked import HookedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OODConfig:
    """How shifted inputs are drawn and how the mechanism-based predictors are fitted."""

    shifts: tuple[int, ...] = (1, 2)
    """Numbers of filler words inserted; examples are split evenly between these shifts."""
    before: str | None = None
    """Insert the filler words just before this named position (default: right after `<bos>`)."""
    n: int = 512
    """Shifted examples in all."""
    n_references: int = 8
    """In-distribution bases per shifted example (counterfactual simulation)."""
    n_probe: int = 1024
    """In-distribution examples the value probe is fitted on."""
    probe_steps: int = 300
    """Full-batch Adam steps of the probe."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.shifts or min(self.shifts) < 1:
            raise InterpError("OODConfig.shifts must be positive numbers of filler words")


@dataclass(frozen=True)
class OODResult:
    """Per-example scores and correctness on the shifted inputs, and each predictor's AUROC."""

    correct: Tensor  # [n] bool
    scores: dict[str, Tensor]  # predictor -> [n]
    auroc: dict[str, float]

    @property
    def accuracy(self) -> float:
        return self.correct.float().mean().item()

    def to_dict(self) -> dict:
        return {"n": int(self.correct.numel()), "accuracy": self.accuracy, "auroc": self.auroc}


def _end_logits(model: HookedModel, ids: Tensor, end: Tensor) -> Tensor:
    with torch.no_grad():
        logits = model(ids)
    return logits[torch.arange(len(ids), device=logits.device), end.to(logits.device)]  # [batch, vocab]


def _features(model: HookedModel, a: Alignment, ids: Tensor, positions: dict[str, Tensor]) -> Tensor:
    """[batch, k] aligned coordinates (or the whole vector) of `a` on `ids`."""
    with torch.no_grad():
        _, cache = model.run_with_cache(ids, names=[a.location.hook])
    x = gather(cache[a.location.hook], a.location, position_index(a.location, positions, len(ids))).float()
    return x if a.basis is None else x @ a.basis.to(x).T


def counterfactual_simulation(
    model: HookedModel,
    tm: TaskModel,
    alignments: Sequence[Alignment],
    settings: list,
    ids: Tensor,
    positions: dict,
    cfg: OODConfig,
) -> Tensor:
    """[n] per input: the fraction of (variable, in-distribution base) pairs into which the input passes
    that variable's value correctly (each variable interchanged on its own)."""
    rng = np.random.default_rng([cfg.seed, 5])
    variables = list(dict.fromkeys(a.variable for a in alignments))
    agree = torch.zeros(len(settings))
    for _ in range(cfg.n_references):
        refs = [tm.causal.sample_input(rng) for _ in settings]
        ref_ids, ref_pos = tm.encode_many(refs)
        ref_labels = tm.codes([tm.causal.run(r)[tm.output] for r in refs])
        for v in variables:
            cf = [tm.causal.interchange(r, {v: x}) for r, x in zip(refs, settings, strict=True)]
            data = Counterfactuals(
                task=tm, variables=(v,), base=tuple(refs), sources={v: tuple(settings)}, settings=tuple(cf),
                base_ids=ref_ids, base_positions=ref_pos, source_ids={v: ids}, source_positions={v: positions},
                labels=tm.codes([c[tm.output] for c in cf]), base_labels=ref_labels,
            )  # fmt: skip
            mine = [a for a in alignments if a.variable == v]
            agree += tm.agree(predictions(model, data, mine), data.labels).float()
    return agree / (cfg.n_references * len(variables))


def _fit_probe(x: Tensor, y: Tensor, n_classes: int, steps: int) -> torch.nn.Linear:
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    probe = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05)
    for _ in range(steps):
        loss = F.cross_entropy(probe((x - mean) / std), y) + 1e-3 * probe.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    probe.register_buffer("mean", mean)
    probe.register_buffer("std", std)
    return probe


def value_probing(
    model: HookedModel,
    tm: TaskModel,
    alignments: Sequence[Alignment],
    settings: list,
    ids: Tensor,
    positions: dict,
    cfg: OODConfig,
) -> Tensor:
    """[n] probe probability of each input's true variable value, averaged over alignments."""
    rng = np.random.default_rng([cfg.seed, 9])
    train = [tm.causal.sample_input(rng) for _ in range(cfg.n_probe)]
    train_ids, train_pos = tm.encode_many(train)
    scores = torch.zeros(len(settings))
    for a in alignments:
        values = list(dict.fromkeys(tm.causal.values[a.variable]))
        index = {v: i for i, v in enumerate(values)}
        y = torch.tensor([index[tm.causal.run(s)[a.variable]] for s in train])
        probe = _fit_probe(_features(model, a, train_ids, train_pos), y, len(values), cfg.probe_steps)
        with torch.no_grad():
            x = _features(model, a, ids, positions)
            probs = probe((x - probe.mean) / probe.std).softmax(-1)  # [n, n_values]
        truth = torch.tensor([index[tm.causal.run(s)[a.variable]] for s in settings])
        scores += probs[torch.arange(len(settings)), truth]
    return scores / len(alignments)


def predict_ood(
    model: HookedModel, tm: TaskModel, alignments: Sequence[Alignment], cfg: OODConfig = OODConfig()
) -> OODResult:
    """Correctness on shifted inputs and how well each predictor anticipates it (see module docstring).

    Example:
        >>> predict_ood(model, tm, [Alignment("left", loc)], OODConfig(shifts=(1,), n=256)).to_dict()
    """
    if not alignments:
        raise InterpError("predict_ood needs at least one alignment")
    rng = np.random.default_rng([cfg.seed, 3])
    per_shift = max(1, cfg.n // len(cfg.shifts))
    correct, scores = [], {"counterfactual_simulation": [], "value_probing": [], "confidence": []}
    for shift in cfg.shifts:
        settings = [tm.causal.sample_input(rng) for _ in range(per_shift)]
        ids, positions = tm.encode_many(settings, shift=shift, seed=cfg.seed + shift, before=cfg.before)
        end = _end_logits(model, ids, positions["END"])
        correct.append(tm.correct(end, [tm.causal.run(s)[tm.output] for s in settings]))
        scores["confidence"].append(tm.confidence(end).cpu())
        scores["counterfactual_simulation"].append(
            counterfactual_simulation(model, tm, alignments, settings, ids, positions, cfg)
        )
        scores["value_probing"].append(value_probing(model, tm, alignments, settings, ids, positions, cfg))
    right = torch.cat(correct)
    joined = {k: torch.cat(v) for k, v in scores.items()}
    aurocs = {k: auroc(v, right) for k, v in joined.items()}
    logger.info("OOD accuracy %.3f; AUROC %s", right.float().mean().item(), aurocs)
    return OODResult(right, joined, aurocs)
