"""Concept edits, the model's output distribution, and the ground-truth ICaCE.

An *edit* is (example x, concept C, source value c, target value c'), where c is x's own value. The
individual causal concept effect (ICaCE, CEBaB) of the edit on model N is the change of N's output
distribution when the text is replaced by its true counterfactual:

    ICaCE_N(x, C: c -> c') = N(x_{C=c'}) - N(x)        # [label] vector, sums to 0

N's output distribution is the softmax over the task's label tokens of the logits at the last
position (`END`). Explanation methods estimate the same vector without seeing x_{C=c'}.

    >>> sample = Concepts().sample(50, seed=1)
    >>> edits = all_edits(sample)                      # every example x concept x other value
    >>> true = true_icace(model, edits)                # [edit, label]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from interp import HookedModel
from interp.errors import InterpError
from interp.tasks.concepts import CONCEPTS, ConceptSample, concept_index

CHUNK = 512  # examples per forward pass


@dataclass(frozen=True, eq=False)
class Edits:
    """Edits to explain: edit i sets concept `concept[i]` of `sample[example[i]]` from `source[i]` to `target[i]`.

    Example:
        >>> edits = all_edits(sample, concepts=("food",))
        >>> edits.tokens.shape  # [edit, pos], the *original* texts
    """

    sample: ConceptSample  # the examples being edited
    example: Tensor  # [edit] long, index into sample
    concept: Tensor  # [edit] long, index into CONCEPTS
    source: Tensor  # [edit] long, the example's value of that concept
    target: Tensor  # [edit] long, the value the edit sets

    def __len__(self) -> int:
        return self.example.shape[0]

    @property
    def tokens(self) -> Tensor:
        """[edit, pos]: each edit's original text."""
        return self.sample.tokens[self.example]

    @property
    def values(self) -> Tensor:
        """[edit, concept]: each edit's original concept values."""
        return self.sample.values[self.example]

    def concepts(self) -> list[str]:
        """Names of the concepts edited, in `CONCEPTS` order."""
        return [CONCEPTS[c] for c in sorted(set(self.concept.tolist()))]

    def mask(self, concept: str) -> Tensor:
        """[edit] bool: the edits of `concept`."""
        return self.concept == concept_index(concept)

    def subset(self, mask: Tensor) -> Edits:
        """The edits where `mask` ([edit] bool) holds."""
        return dataclasses.replace(
            self,
            example=self.example[mask],
            concept=self.concept[mask],
            source=self.source[mask],
            target=self.target[mask],
        )

    def counterfactual_tokens(self) -> Tensor:
        """[edit, pos]: the true counterfactual texts (ground truth only; estimators never call this)."""
        out = torch.empty_like(self.tokens)
        for c in self.concept.unique().tolist():
            rows = (self.concept == c).nonzero()[:, 0]  # [k]
            cf = self.sample.select(self.example[rows]).counterfactual(CONCEPTS[c], self.target[rows])
            out[rows] = cf.tokens
        return out


def all_edits(sample: ConceptSample, concepts: Sequence[str] | None = None) -> Edits:
    """Every (example, concept, other value) edit of `sample`, grouped by concept then example."""
    names = list(concepts) if concepts is not None else list(CONCEPTS)
    example, concept, source, target = [], [], [], []
    n_values = sample.task.values
    for name in names:
        c = concept_index(name)
        for shift in range(1, len(n_values[name])):
            example.append(torch.arange(len(sample)))
            concept.append(torch.full((len(sample),), c))
            source.append(sample.values[:, c])
            target.append((sample.values[:, c] + shift) % len(n_values[name]))
    if not example:
        raise InterpError("no concepts to edit: pass at least one of " + ", ".join(CONCEPTS))
    cat = lambda xs: torch.cat(xs).long()  # noqa: E731
    order = torch.argsort(cat(concept) * (len(sample) + 1) + cat(example), stable=True)
    return Edits(sample, cat(example)[order], cat(concept)[order], cat(source)[order], cat(target)[order])


def output_dist(
    model: HookedModel,
    tokens: Tensor,
    label_ids: Sequence[int],
    edit: Callable[[Tensor, Tensor], Tensor] | None = None,
    hook: str | None = None,
) -> Tensor:
    """[batch, label]: softmax over the label tokens at the last position, without gradients.

    Only the last position's logits are computed (`logits_to_keep=1`, as Hugging Face causal LMs take).

    With `edit` and `hook`, the activation at `hook` is replaced by `edit(act, rows)` during the
    forward, where `rows` ([chunk] long) says which rows of `tokens` the chunk holds.
    """
    outs = []
    with torch.no_grad():
        for start in range(0, tokens.shape[0], CHUNK):
            rows = torch.arange(start, min(start + CHUNK, tokens.shape[0]))
            ids = tokens[rows].to(model.device)
            if edit is None:
                logits = model(ids, logits_to_keep=1)
            else:
                with model.hooks({hook: lambda act, name, rows=rows: edit(act, rows)}):
                    logits = model(ids, logits_to_keep=1)
            outs.append(logits[:, -1, list(label_ids)].float().softmax(-1).cpu())  # [chunk, label]
    return torch.cat(outs)


def true_icace(model: HookedModel, edits: Edits) -> Tensor:
    """[edit, label]: N(x_{C=c'}) - N(x), running the model on the true counterfactual texts."""
    label_ids = edits.sample.task.label_ids
    return output_dist(model, edits.counterfactual_tokens(), label_ids) - output_dist(
        model, edits.tokens, label_ids
    )


def check_model(model: HookedModel, sample: ConceptSample) -> None:
    """Raise `InterpError` unless `model` can read the task's texts and has its label tokens."""
    task = sample.task
    vocab = model.hf_model.get_output_embeddings()
    n_vocab = vocab.weight.shape[0] if vocab is not None else 0
    if n_vocab < task.vocab_size:
        raise InterpError(
            f"the model's vocabulary ({n_vocab} tokens) is smaller than the {task.name} task's ({task.vocab_size}); "
            f"concept explanations need a model trained on the task's tokenizer, e.g. concepts-tiny"
        )
    tok = model.tokenizer
    if tok is not None:
        ids = tok.convert_tokens_to_ids(list(task.labels))
        if list(ids) != list(task.label_ids):
            raise InterpError(
                f"the model's tokenizer maps the labels {task.labels} to {ids}, the task to {task.label_ids}: "
                "it was not trained on this task's tokenizer"
            )
