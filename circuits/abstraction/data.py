"""Counterfactual datasets in token form: base prompts, one source prompt per intervened variable, labels.

`counterfactuals(tm, variables, n, seed)` samples (base, sources) tuples from the task model's
causal model (`CausalModel.sample_counterfactuals`) and encodes them. Every intervened variable has
its own source batch, so multi-source interchange interventions need nothing else.

    >>> data = counterfactuals(high_level("hierarchical_equality"), ["left"], n=256, seed=0)
    >>> data.base_ids.shape, data.source_ids["left"].shape, data.labels.shape  # [256, 6] each, [256]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from circuits.abstraction.causal_model import Setting
from circuits.abstraction.highlevel.base import TaskModel
from interp.errors import InterpError


@dataclass(frozen=True, eq=False)
class Counterfactuals:
    """A batch of multi-source interchange examples for one task model.

    `labels` are the codes (`TaskModel.code`) of the counterfactual outputs, `base_labels` those of
    the base's own outputs; `settings` are the full counterfactual high-level settings.
    """

    task: TaskModel
    variables: tuple[str, ...]
    base: tuple[Setting, ...]
    sources: dict[str, tuple[Setting, ...]]
    settings: tuple[Setting, ...]
    base_ids: Tensor  # [batch, pos] long
    base_positions: dict[str, Tensor]  # name -> [batch]
    source_ids: dict[str, Tensor]  # variable -> [batch, pos]
    source_positions: dict[str, dict[str, Tensor]]  # variable -> name -> [batch]
    labels: Tensor  # [batch] long
    base_labels: Tensor  # [batch] long

    def __len__(self) -> int:
        return self.base_ids.shape[0]

    @property
    def outputs(self) -> list[Any]:
        """The counterfactual output values (what `labels` encode)."""
        return [s[self.task.output] for s in self.settings]

    @property
    def base_outputs(self) -> list[Any]:
        """The base inputs' own output values (what `base_labels` encode)."""
        return [self.task.causal.run(b)[self.task.output] for b in self.base]

    def subset(self, index: Tensor | Sequence[int]) -> Counterfactuals:
        """The examples at `index`."""
        idx = torch.as_tensor(index, dtype=torch.long)
        pick = idx.tolist()
        return Counterfactuals(
            task=self.task,
            variables=self.variables,
            base=tuple(self.base[i] for i in pick),
            sources={v: tuple(s[i] for i in pick) for v, s in self.sources.items()},
            settings=tuple(self.settings[i] for i in pick),
            base_ids=self.base_ids[idx],
            base_positions={k: v[idx] for k, v in self.base_positions.items()},
            source_ids={k: v[idx] for k, v in self.source_ids.items()},
            source_positions={k: {n: p[idx] for n, p in d.items()} for k, d in self.source_positions.items()},
            labels=self.labels[idx],
            base_labels=self.base_labels[idx],
        )

    def targets(self, vocab_size: int) -> Tensor:
        """[batch, vocab] training targets for the counterfactual outputs."""
        return self.task.targets(self.outputs, vocab_size)


def counterfactuals(
    tm: TaskModel,
    variables: Sequence[str],
    n: int,
    seed: int = 0,
    *,
    changes: bool | None = None,
    shift: int = 0,
) -> Counterfactuals:
    """`n` encoded counterfactual examples intervening on `variables` (one source each).

    `changes` filters on whether the interchange changes the output (see
    `CausalModel.sample_counterfactuals`); `shift` encodes every prompt with that many filler words
    inserted after `<bos>` (an out-of-distribution variant).

    Example:
        >>> data = counterfactuals(tm, ["left", "right"], n=64)  # multi-source: two source batches
    """
    if n < 1:
        raise InterpError(f"counterfactuals needs n >= 1, got {n}")
    variables = tuple(variables)
    examples = tm.causal.sample_counterfactuals(n, variables, seed=seed, changes=changes)
    base = tuple(e.base for e in examples)
    sources = {v: tuple(e.sources[v] for e in examples) for v in variables}
    base_ids, base_positions = tm.encode_many(base, shift, seed)
    source_ids, source_positions = {}, {}
    for i, v in enumerate(variables):
        source_ids[v], source_positions[v] = tm.encode_many(sources[v], shift, seed + 1 + i)
    settings = tuple(e.setting for e in examples)
    return Counterfactuals(
        task=tm,
        variables=variables,
        base=base,
        sources=sources,
        settings=settings,
        base_ids=base_ids,
        base_positions=base_positions,
        source_ids=source_ids,
        source_positions=source_positions,
        labels=tm.codes([s[tm.output] for s in settings]),
        base_labels=tm.codes([tm.causal.run(b)[tm.output] for b in base]),
    )
