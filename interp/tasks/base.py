"""What every task produces: a `TaskBatch` of clean/corrupted prompts with answers and metrics.

A task is a frozen dataclass (its fields are its configuration) with one method that matters,
`generate(n, seed) -> TaskBatch`. All prompts of a task have the same token length, so batches need
no padding; every prompt starts with `<bos>`, and the model's prediction is read at position `END`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from interp.tasks.tokenizer import words_to_text
from interp.tasks.vocab import encode_words
from interp.validation import check_count


@dataclass(frozen=True, eq=False)
class TaskBatch:
    """A batch of counterfactual pairs.

    `clean` and `corrupted` are [batch, pos] token ids (with `<bos>` at position 0) that differ only at
    the positions the task documents. `answer` / `wrong` are the correct and the contrasting token for
    the *clean* prompt; `correct` optionally lists every acceptable answer per example (greater-than),
    otherwise the answer alone is correct. Metrics read logits at `positions["END"]`.
    """

    task: str
    seed: int
    clean: Tensor  # [batch, pos] long
    corrupted: Tensor  # [batch, pos] long
    answer: Tensor  # [batch] long
    wrong: Tensor  # [batch] long
    positions: dict[str, Tensor]  # name -> [batch] long
    variables: dict[str, list[Any]]  # high-level variable -> one value per example
    clean_text: tuple[str, ...]  # without <bos>; the tokenizer adds it
    corrupted_text: tuple[str, ...]
    correct: tuple[tuple[int, ...], ...] | None = None  # per example, all acceptable answer ids

    def __len__(self) -> int:
        return self.clean.shape[0]

    def select(self, rows: Sequence[int] | Tensor) -> TaskBatch:
        """A batch of the examples at `rows`, in that order.

        Example:
            >>> batch.select(range(16))  # the first 16 examples (the same as generate(16, seed))
        """
        pick = [int(i) for i in rows]
        index = torch.tensor(pick, dtype=torch.long)  # a CPU index selects on any device
        return dataclasses.replace(
            self,
            clean=self.clean[index],
            corrupted=self.corrupted[index],
            answer=self.answer[index],
            wrong=self.wrong[index],
            positions={k: v[index] for k, v in self.positions.items()},
            variables={k: [v[i] for i in pick] for k, v in self.variables.items()},
            clean_text=tuple(self.clean_text[i] for i in pick),
            corrupted_text=tuple(self.corrupted_text[i] for i in pick),
            correct=None if self.correct is None else tuple(self.correct[i] for i in pick),
        )

    def to(self, device: torch.device | str) -> TaskBatch:
        """A copy with every tensor on `device`."""
        return dataclasses.replace(
            self,
            clean=self.clean.to(device),
            corrupted=self.corrupted.to(device),
            answer=self.answer.to(device),
            wrong=self.wrong.to(device),
            positions={k: v.to(device) for k, v in self.positions.items()},
        )

    def end_logits(self, logits: Tensor) -> Tensor:
        """Logits at `END`: [batch, pos, vocab] -> [batch, vocab]; [batch, vocab] passes through."""
        if logits.ndim == 2:
            return logits
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, self.positions["END"].to(logits.device)]

    def correct_mask(self, vocab_size: int, device: torch.device | str = "cpu") -> Tensor:
        """[batch, vocab] bool: which tokens count as a correct prediction for each example."""
        mask = torch.zeros(len(self), vocab_size, dtype=torch.bool, device=device)
        if self.correct is None:
            mask[torch.arange(len(self), device=device), self.answer.to(device)] = True
            return mask
        for i, ids in enumerate(self.correct):
            mask[i, list(ids)] = True
        return mask

    def logit_diff_per_example(self, logits: Tensor) -> Tensor:
        """[batch]: logit of `answer` minus logit of `wrong` at `END` (differentiable)."""
        end = self.end_logits(logits)  # [batch, vocab]
        return (
            end.gather(1, self.answer.to(end.device)[:, None])[:, 0]
            - end.gather(1, self.wrong.to(end.device)[:, None])[:, 0]
        )

    def logit_diff(self, logits: Tensor) -> Tensor:
        """Scalar: mean logit difference, the usual patching metric.

        Example:
            >>> batch = interp.tasks.get("ioi").generate(8, seed=0)
            >>> batch.logit_diff(model(batch.clean))  # tensor(5.3) on a model that solves IOI
        """
        return self.logit_diff_per_example(logits).mean()

    def prob_per_example(self, logits: Tensor) -> Tensor:
        """[batch]: probability at `END` of the answer (of all correct answers, where several are)."""
        probs = self.end_logits(logits).float().softmax(-1)  # [batch, vocab]
        return (probs * self.correct_mask(probs.shape[-1], probs.device)).sum(-1)

    def prob(self, logits: Tensor) -> Tensor:
        """Scalar: mean of `prob_per_example`."""
        return self.prob_per_example(logits).mean()

    def correct_per_example(self, logits: Tensor) -> Tensor:
        """[batch] bool: the argmax at `END` is a correct answer."""
        end = self.end_logits(logits)  # [batch, vocab]
        mask = self.correct_mask(end.shape[-1], end.device)
        return mask.gather(1, end.argmax(-1)[:, None])[:, 0]

    def accuracy(self, logits: Tensor) -> float:
        """Fraction of examples whose argmax at `END` is correct."""
        return self.correct_per_example(logits).float().mean().item()

    def metrics(self, logits: Tensor) -> dict[str, float]:
        """`accuracy`, `logit_diff` and `prob` as plain floats."""
        with torch.no_grad():
            return {
                "accuracy": self.accuracy(logits),
                "logit_diff": self.logit_diff(logits).item(),
                "prob": self.prob(logits).item(),
            }


@dataclass
class _Builder:
    """Collects examples word by word, then packs them into a `TaskBatch`."""

    clean: list[list[str]] = field(default_factory=list)
    corrupted: list[list[str]] = field(default_factory=list)
    answer: list[int] = field(default_factory=list)
    wrong: list[int] = field(default_factory=list)
    positions: dict[str, list[int]] = field(default_factory=dict)
    variables: dict[str, list[Any]] = field(default_factory=dict)
    correct: list[tuple[int, ...]] | None = None

    def add(
        self,
        clean: list[str],
        corrupted: list[str],
        answer: int,
        wrong: int,
        positions: dict[str, int],
        variables: dict[str, Any],
        correct: tuple[int, ...] | None = None,
    ) -> None:
        self.clean.append(clean)
        self.corrupted.append(corrupted)
        self.answer.append(answer)
        self.wrong.append(wrong)
        for k, v in positions.items():
            self.positions.setdefault(k, []).append(v)
        for k, v in variables.items():
            self.variables.setdefault(k, []).append(v)
        if correct is not None:
            self.correct = (self.correct or []) + [correct]

    def build(self, task: str, seed: int) -> TaskBatch:
        long = torch.long
        return TaskBatch(
            task=task,
            seed=seed,
            clean=torch.tensor([encode_words(w) for w in self.clean], dtype=long),
            corrupted=torch.tensor([encode_words(w) for w in self.corrupted], dtype=long),
            answer=torch.tensor(self.answer, dtype=long),
            wrong=torch.tensor(self.wrong, dtype=long),
            positions={k: torch.tensor(v, dtype=long) for k, v in self.positions.items()},
            variables=self.variables,
            clean_text=tuple(words_to_text(w) for w in self.clean),
            corrupted_text=tuple(words_to_text(w) for w in self.corrupted),
            correct=None if self.correct is None else tuple(self.correct),
        )


@dataclass(frozen=True)
class Task:
    """Base class: subclasses are frozen dataclasses whose fields configure the task.

    Subclasses set `name`, `corrupted_positions` (the positions where corrupted may differ from
    clean) and implement `_example(rng, builder)`, which appends one example.
    """

    name: ClassVar[str] = ""
    corrupted_positions: ClassVar[tuple[str, ...]] = ()

    def generate(self, n: int, seed: int = 0) -> TaskBatch:
        """`n` examples, a deterministic function of (task config, n, seed).

        Example:
            >>> batch = interp.tasks.get("ioi").generate(4, seed=0)
            >>> batch.clean.shape, batch.positions["END"]
        """
        check_count(n, seed)
        rng = np.random.default_rng(seed)
        builder = _Builder()
        for _ in range(n):
            self._example(rng, builder)
        return builder.build(self.name, seed)

    def _example(self, rng: np.random.Generator, builder: _Builder) -> None:
        raise NotImplementedError

    def training_batch(self, n: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """(input_ids [batch, pos], labels [batch, pos]) for supervised training.

        `labels[b, t]` is the token to predict after position t, or -100. The default supervises
        only `END`, with a uniformly drawn correct answer (the answer itself for one-answer tasks).
        """
        batch = self.generate(n, seed=int(rng.integers(2**62)))
        labels = torch.full_like(batch.clean, -100)
        targets = batch.answer.clone()
        if batch.correct is not None:
            picks = rng.integers(0, 2**31, size=n)
            targets = torch.tensor([ids[p % len(ids)] for ids, p in zip(batch.correct, picks, strict=True)])
        labels[torch.arange(n), batch.positions["END"]] = targets
        return batch.clean, labels
