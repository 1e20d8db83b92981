"""High-level model of greater-than: the start year's two digits set the threshold of acceptable answers.

Inputs: `century`, `yy` (start year within the century) and `noun`. `year` = yy is the start year
as moved to the final position (the value an attention head copies); `threshold` = year is the
output: every two-digit completion above it is correct. Interchanging `year` from a source makes
the source's threshold the right one.

Because many answers are right, the prediction is decoded as a threshold too: the t whose
"uniform over t+1..99" distribution is closest in KL to the model's distribution over two-digit
tokens, i.e. argmax_t log(99 - t) + mean_{y > t} log p(y). Codes agree within `tolerance` (2 years).
A prediction is *correct* (task accuracy) when its most likely completion is a later year.

    >>> tm = build()
    >>> tm.causal.run({"century": 17, "yy": 32, "noun": "war"})["threshold"]
    32
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from circuits.abstraction.causal_model import CausalModel, Setting
from circuits.abstraction.highlevel.base import TaskModel
from interp.tasks.greater_than import TEMPLATE
from interp.tasks.vocab import CENTURIES, GT_NOUNS, TOKEN_ID, TWO_DIGITS, VOCAB

_TWO_DIGIT_IDS = torch.tensor([TOKEN_ID[w] for w in TWO_DIGITS])  # [100]


def _words(s: Setting) -> tuple[list[str], dict[str, int]]:
    template = TEMPLATE.split()
    fill = {"{N}": s["noun"], "{Y}": f"{s['century']}{s['yy']:02d}", "{C}": str(s["century"])}
    words = [fill.get(w, w) for w in template]
    return words, {"NOUN": template.index("{N}") + 1, "YEAR": template.index("{Y}") + 1, "END": len(words)}


@dataclass(frozen=True)
class GreaterThanModel(TaskModel):
    """Codes are thresholds (0..98), not token ids; see the module docstring."""

    def code(self, value: Any) -> int:
        return int(value)

    def decode(self, end_logits: Tensor) -> Tensor:
        logp = end_logits[:, _TWO_DIGIT_IDS.to(end_logits.device)].float().log_softmax(-1)  # [batch, 100]
        return _threshold_scores(logp).argmax(-1)

    def correct(self, end_logits: Tensor, values: Sequence[Any]) -> Tensor:
        """Right when the most likely two-digit completion is a later year (the task's accuracy)."""
        best = end_logits[:, _TWO_DIGIT_IDS.to(end_logits.device)].argmax(-1).cpu()  # [batch] 0..99
        return best > torch.tensor([int(v) for v in values])

    def targets(self, values: Sequence[Any], vocab_size: int = len(VOCAB)) -> Tensor:
        out = torch.zeros(len(values), vocab_size)
        for i, t in enumerate(values):
            later = _TWO_DIGIT_IDS[int(t) + 1 :]
            out[i, later] = 1.0 / len(later)
        return out

    def confidence(self, end_logits: Tensor) -> Tensor:
        """exp(-KL) between the best threshold distribution and the model's (1 = a clean threshold)."""
        logp = end_logits[:, _TWO_DIGIT_IDS.to(end_logits.device)].float().log_softmax(-1)
        return _threshold_scores(logp).max(-1).values.exp()


def _threshold_scores(logp: Tensor) -> Tensor:
    """[batch, 100] log-probs over 00..99 -> [batch, 99] score(t) = -KL(uniform(t+1..99) || p), t = 0..98."""
    suffix = logp.flip(-1).cumsum(-1).flip(-1)  # suffix[:, y] = sum_{y' >= y} logp
    count = torch.arange(99, 0, -1, device=logp.device, dtype=logp.dtype)  # 99 - t for t = 0..98
    # -KL(u || p) = sum_y u log p - sum_y u log u = mean_{y > t} log p(y) + log(99 - t)
    return suffix[:, 1:] / count + count.log()


def _sampler(min_yy: int, max_yy: int):
    def sample(rng: np.random.Generator) -> Setting:
        return {
            "century": int(rng.choice(CENTURIES)),
            "yy": int(rng.integers(min_yy, max_yy + 1)),
            "noun": str(rng.choice(GT_NOUNS)),
        }

    return sample


def build(min_yy: int = 2, max_yy: int = 98) -> GreaterThanModel:
    """The greater-than task model with start years `min_yy..max_yy` within the century."""
    years = tuple(range(100))
    causal = CausalModel(
        values={"century": CENTURIES, "yy": years, "noun": GT_NOUNS, "year": years, "threshold": years},
        parents={"year": ("yy",), "threshold": ("year",)},
        mechanisms={"year": lambda yy: yy, "threshold": lambda year: year},
        outputs=("threshold",),
        sampler=_sampler(min_yy, max_yy),
    )
    return GreaterThanModel(
        name="greater_than",
        causal=causal,
        words=_words,
        answer_words=TWO_DIGITS,
        answer_word=lambda v: f"{int(v):02d}",
        description="year = yy; threshold = year (every later two-digit year is correct)",
        filler=GT_NOUNS,
        tolerance=2,
    )
