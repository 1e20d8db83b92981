"""What an edit did and what it broke: efficacy on the edited prompts, accuracy on held-out prompts,
before and after. Works for any edit with an `applied(model)` context manager (hook or weight edits).

    >>> report = evaluate_edit(model, edit, edited=Probe(prompts, end, new_targets), heldout=Probe(other, end2, answers))
    >>> report.efficacy, report.heldout_after
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from interp.hooked import HookedModel


class Edit(Protocol):
    def applied(self, model: HookedModel) -> Any: ...


@dataclass(frozen=True, eq=False)
class Probe:
    """Prompts [n, pos], where each is read ([n] positions) and the token expected there ([n] ids)."""

    prompts: Tensor
    end: Tensor
    answers: Tensor

    def accuracy(self, model: HookedModel, chunk: int = 256) -> float:
        """Fraction of prompts whose argmax at `end` is the expected token (no gradients)."""
        if self.prompts.shape[0] == 0:
            return float("nan")
        hits = 0
        with torch.no_grad():
            for start in range(0, self.prompts.shape[0], chunk):
                logits = model(self.prompts[start : start + chunk])
                end = self.end[start : start + chunk].to(logits.device)
                pred = logits[torch.arange(logits.shape[0], device=logits.device), end].argmax(-1)
                hits += int((pred == self.answers[start : start + chunk].to(pred.device)).sum())
        return hits / self.prompts.shape[0]


@dataclass(frozen=True)
class EditReport:
    """Efficacy (new behaviour on the edited prompts) and retention (held-out accuracy) around an edit."""

    efficacy_before: float
    efficacy: float
    heldout_before: float
    heldout_after: float
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_edit(
    model: HookedModel, edit: Edit, edited: Probe, heldout: Probe, **others: Probe
) -> EditReport:
    """Accuracy on `edited` (targets = the new behaviour) and on `heldout` (targets = the old, correct
    behaviour) without and with `edit`; `others` are reported in `extra` as `{name}_before/_after`.

    Example:
        >>> evaluate_edit(model, edit, Probe(p, end, new), Probe(q, end_q, ans), same_subject=Probe(...))
    """
    before = {"edited": edited.accuracy(model), "heldout": heldout.accuracy(model)}
    before.update({k: p.accuracy(model) for k, p in others.items()})
    with edit.applied(model):
        after = {"edited": edited.accuracy(model), "heldout": heldout.accuracy(model)}
        after.update({k: p.accuracy(model) for k, p in others.items()})
    extra = {f"{k}_before": before[k] for k in others} | {f"{k}_after": after[k] for k in others}
    return EditReport(before["edited"], after["edited"], before["heldout"], after["heldout"], extra)
