"""A high-level model of a task: a `CausalModel` plus how its inputs become tokens and its outputs logits.

`TaskModel` is the bridge between the causal model (Python values) and a language model (token ids
and logits). It encodes an input setting to token ids with named positions, turns an output value
into training targets, and decodes logits at `END` back into an integer *code* comparable with the
code of the high-level output (`agree`). For most tasks the code is the answer's token id and the
prediction is the argmax over the task's answer tokens; tasks with a set of right answers
(greater-than) override `decode`/`code`/`targets`.

    >>> tm = circuits.abstraction.high_level("hierarchical_equality")
    >>> ids, positions = tm.encode(tm.causal.sample_input(np.random.default_rng(0)))
    >>> tm.code(tm.causal.run(setting)[tm.output])  # token id of "true" or "false"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from circuits.abstraction.causal_model import CausalModel, Setting
from interp.errors import InterpError
from interp.tasks.vocab import TOKEN_ID, VOCAB, encode_words

Encoded = tuple[list[int], dict[str, int]]  # token ids (with <bos>), named positions


@dataclass(frozen=True)
class TaskModel:
    """High-level causal model of an `interp.tasks` task, with its token interface.

    `words(setting) -> (words, positions)` gives the prompt's words (without `<bos>`) and named
    positions (counting `<bos>` as 0); `answer_words` are the words the prediction is read among;
    `answer_word(value)` maps an output value to its word. `filler` words are what the default OOD
    shift inserts.
    """

    name: str
    """The `interp.tasks` name."""
    causal: CausalModel
    words: Callable[[Setting], tuple[list[str], dict[str, int]]]
    answer_words: tuple[str, ...]
    answer_word: Callable[[Any], str]
    description: str = ""
    filler: tuple[str, ...] = ()
    tolerance: int = 0
    """Codes within this distance count as agreeing (0: exact)."""

    @property
    def output(self) -> str:
        """The output variable read at `END`."""
        return self.causal.outputs[0]

    @property
    def answer_ids(self) -> Tensor:
        """[n_answers] token ids the prediction is read among."""
        return torch.tensor([TOKEN_ID[w] for w in self.answer_words])

    # -- inputs --------------------------------------------------------------------------------
    def encode(
        self,
        setting: Setting,
        shift: int = 0,
        rng: np.random.Generator | None = None,
        before: str | None = None,
    ) -> Encoded:
        """Token ids (with `<bos>`) and named positions of one input setting.

        `shift > 0` inserts that many filler words right after `<bos>`, or just before the named
        position `before`: an out-of-distribution variant of the prompt with the same meaning
        (positions at or after the insertion move accordingly).
        """
        words, positions = self.words(setting)
        if shift:
            if not self.filler:
                raise InterpError(f"task model {self.name!r} defines no filler words to shift prompts with")
            if before is not None and before not in positions:
                raise InterpError(f"cannot insert before {before!r}: positions are {', '.join(positions)}")
            at = 1 if before is None else positions[before]  # token index of the insertion (<bos> is 0)
            rng = rng or np.random.default_rng(0)
            fill = [str(w) for w in rng.choice(self.filler, size=shift)]
            words = list(words[: at - 1]) + fill + list(words[at - 1 :])
            positions = {k: v + shift if v >= at else v for k, v in positions.items()}
        return encode_words(list(words)), positions

    def encode_many(
        self, settings: Sequence[Setting], shift: int = 0, seed: int = 0, before: str | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """ids [batch, pos] and positions name -> [batch] for many settings (all prompts of a task
        have the same length)."""
        rng = np.random.default_rng(seed)
        encoded = [self.encode(s, shift, rng, before) for s in settings]
        lengths = {len(ids) for ids, _ in encoded}
        if len(lengths) != 1:
            raise InterpError(
                f"{self.name}: prompts of different lengths {sorted(lengths)} cannot be batched"
            )
        ids = torch.tensor([e[0] for e in encoded], dtype=torch.long)
        names = encoded[0][1].keys()
        positions = {k: torch.tensor([e[1][k] for e in encoded], dtype=torch.long) for k in names}
        return ids, positions

    # -- outputs -------------------------------------------------------------------------------
    def code(self, value: Any) -> int:
        """Integer code of a high-level output value (default: the answer's token id)."""
        return TOKEN_ID[self.answer_word(value)]

    def codes(self, values: Sequence[Any]) -> Tensor:
        """[batch] long codes of many output values."""
        return torch.tensor([self.code(v) for v in values], dtype=torch.long)

    def decode(self, end_logits: Tensor) -> Tensor:
        """[batch, vocab] logits at END -> [batch] codes of the predicted output (argmax over answers)."""
        ids = self.answer_ids.to(end_logits.device)
        return ids[end_logits[:, ids].argmax(-1)]

    def agree(self, predicted: Tensor, codes: Tensor) -> Tensor:
        """[batch] bool: predicted codes match the high-level codes (within `tolerance`)."""
        return (predicted.cpu() - codes.cpu()).abs() <= self.tolerance

    def correct(self, end_logits: Tensor, values: Sequence[Any]) -> Tensor:
        """[batch] bool: the task's own notion of a right answer for output `values` (default: the
        decoded prediction agrees with the value's code). IIA uses `agree`, which may be stricter."""
        return self.agree(self.decode(end_logits), self.codes(values))

    def targets(self, values: Sequence[Any], vocab_size: int = len(VOCAB)) -> Tensor:
        """[batch, vocab] target distribution for training on high-level outputs (default one-hot)."""
        out = torch.zeros(len(values), vocab_size)
        out[torch.arange(len(values)), self.codes(values)] = 1.0
        return out

    def confidence(self, end_logits: Tensor) -> Tensor:
        """[batch] the model's confidence in its own prediction (max probability over answers)."""
        return end_logits[:, self.answer_ids.to(end_logits.device)].float().softmax(-1).max(-1).values
