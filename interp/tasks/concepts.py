"""Concept-annotated restaurant reviews with exact structural counterfactuals (CEBaB / LIBERTy style).

A review is rendered by a template grammar from four *concepts* (each with three values) and some
*exogenous* choices that are not concepts:

    {tone} , the {noun} was {intensity} {adjective} , the ... , the ... and the ... . overall it was  -> label

* concepts (`CONCEPTS`): `food` (bad/okay/good), `service` (bad/okay/good), `price` (low/fair/high),
  `ambiance` (bad/okay/good). A concept's value picks the clause's adjective.
* exogenous noise U, held fixed by counterfactuals: the reviewer's tone opener ("sadly"/"well"/
  "happily"), the order of the four clauses, each clause's noun synonym ("food"/"meal"), adjective
  synonym ("bland"/"awful"), intensity adverb ("somewhat"/"quite"/"very"), and the label noise
  `eps ~ N(0, noise)`. Tone and intensity matter to the label but are not concepts, as the unlabelled
  content of real reviews is: two reviews with equal concepts can still be rated differently.
* label rule: `score = tone + sum_c weight_c * polarity(value_c) * intensity_c + eps`; `negative` if
  score < -0.5, `positive` if score > 0.5, `neutral` otherwise. Polarity is -1/0/+1 (price: low = +1,
  high = -1); intensity is 0.5/1/1.5; tone is -0.5/0/+0.5. By default the rule ignores `ambiance`
  (weight 0), so a model that learned the rule should ignore it too. `rule_label` is noise-free.

Changing one concept keeps U and re-renders, so `sample.counterfactual("food", values)` is the true
counterfactual text: it differs from the original only at that concept's adjective token. Every
prompt is 29 words (30 tokens with `<bos>`); the label is read at `END` (the last token).

The shared task vocabulary lacks review words, so this task extends it: `VOCAB` (same ids) followed by
`NEW_WORDS`; `tokenizer()` is the matching word-level tokenizer. `same_vocabulary(tokenizer())` holds.
`generate(n, seed)` returns a `TaskBatch` whose corrupted prompts change `concept` (config) only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import erf, sqrt
from typing import ClassVar

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from torch import Tensor
from transformers import PreTrainedTokenizerFast

from interp.errors import InterpError, closest
from interp.tasks.base import Task, TaskBatch
from interp.tasks.tokenizer import words_to_text
from interp.tasks.vocab import BOS_ID, VOCAB
from interp.validation import check_count

CONCEPTS: tuple[str, ...] = ("food", "service", "price", "ambiance")
VALUES: dict[str, tuple[str, ...]] = {
    "food": ("bad", "okay", "good"),
    "service": ("bad", "okay", "good"),
    "price": ("low", "fair", "high"),
    "ambiance": ("bad", "okay", "good"),
}
POLARITY: dict[str, tuple[float, ...]] = {c: (-1.0, 0.0, 1.0) for c in CONCEPTS} | {"price": (1.0, 0.0, -1.0)}
NOUNS: dict[str, tuple[str, str]] = {
    "food": ("food", "meal"),
    "service": ("service", "staff"),
    "price": ("price", "bill"),
    "ambiance": ("ambiance", "decor"),
}
# concept -> value index -> synonyms (same count for every value, so a synonym index is exogenous)
ADJECTIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "food": (("bland", "awful"), ("decent", "average"), ("delicious", "tasty")),
    "service": (("rude", "slow"), ("fine", "okay"), ("friendly", "attentive")),
    "price": (("cheap", "affordable"), ("fair", "reasonable"), ("expensive", "steep")),
    "ambiance": (("noisy", "gloomy"), ("plain", "ordinary"), ("cozy", "charming")),
}
INTENSITIES: tuple[tuple[str, float], ...] = (("somewhat", 0.5), ("quite", 1.0), ("very", 1.5))
TONES: tuple[tuple[str, float], ...] = (("sadly", -0.5), ("well", 0.0), ("happily", 0.5))
LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
THRESHOLD = 0.5
SEPARATORS: tuple[str, ...] = (",", ",", "and", ".")
ENDING: tuple[str, ...] = ("overall", "it", "was")
CLAUSE = 6  # words per clause incl. its separator: the noun was intensity adjective sep
ADJ_OFFSET = 4  # the adjective's index inside a clause
OPENER = 2  # tone word and ","
SEQ_LEN = 1 + OPENER + CLAUSE * len(CONCEPTS) + len(ENDING)  # 30 tokens with <bos>
END = SEQ_LEN - 1

_WORDS = (
    (
        "the",
        "was",
        "overall",
        "it",
        *SEPARATORS,
        *LABELS,
        *(w for w, _ in INTENSITIES),
        *(w for w, _ in TONES),
    )
    + tuple(w for c in CONCEPTS for w in NOUNS[c])
    + tuple(w for c in CONCEPTS for syn in ADJECTIVES[c] for w in syn)
)
NEW_WORDS: tuple[str, ...] = tuple(w for w in dict.fromkeys(_WORDS) if w not in VOCAB)
TASK_VOCAB: tuple[str, ...] = VOCAB + NEW_WORDS
TOKEN_ID: dict[str, int] = {w: i for i, w in enumerate(TASK_VOCAB)}
LABEL_IDS: tuple[int, ...] = tuple(TOKEN_ID[w] for w in LABELS)


def tokenizer() -> PreTrainedTokenizerFast:
    """The word-level tokenizer of this task: the shared task tokenizer plus `NEW_WORDS`.

    Example:
        >>> tok = tokenizer()
        >>> tok.decode(tok("the food was very tasty").input_ids, skip_special_tokens=True)
        'the food was very tasty'
    """
    backend = Tokenizer(models.WordLevel(vocab=dict(TOKEN_ID), unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", BOS_ID)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=1024,
    )


def concept_index(concept: str) -> int:
    """Index of `concept` in `CONCEPTS`; an unknown name raises `InterpError` listing the concepts."""
    if concept not in CONCEPTS:
        near = closest(concept, CONCEPTS)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InterpError(
            f"the concepts task has no concept {concept!r}{hint}; concepts: {', '.join(CONCEPTS)}"
        )
    return CONCEPTS.index(concept)


@dataclass(frozen=True, eq=False)
class ConceptSample:
    """Reviews with their concept values and exogenous noise; every tensor's first dim is batch.

    Exogenous fields are per concept (column c belongs to `CONCEPTS[c]`), except `order` (clause slot
    -> concept), `tone` and `eps`. `tokens`, `label` and `rule_label` are derived by `task.render`.

    Example:
        >>> s = Concepts().sample(4, seed=0)
        >>> cf = s.counterfactual("food", torch.tensor([2, 2, 2, 2]))  # every review's food -> good
        >>> (s.tokens != cf.tokens).sum(1)  # at most one token differs per review
    """

    task: Concepts
    values: Tensor  # [batch, concept] long, value index per concept
    order: Tensor  # [batch, concept] long, order[b, slot] = concept rendered in clause `slot`
    noun: Tensor  # [batch, concept] long in {0, 1}
    synonym: Tensor  # [batch, concept] long in {0, 1}
    intensity: Tensor  # [batch, concept] long in {0, 1, 2}
    tone: Tensor  # [batch] long in {0, 1, 2}
    eps: Tensor  # [batch] float, label noise
    tokens: Tensor  # [batch, pos] long, <bos> first
    label: Tensor  # [batch] long index into LABELS (with noise)
    rule_label: Tensor  # [batch] long index into LABELS (noise-free)

    def __len__(self) -> int:
        return self.values.shape[0]

    def select(self, index: Tensor | list[int]) -> ConceptSample:
        """The examples at `index` (a [k] long tensor or list), in that order."""
        index = torch.as_tensor(index, dtype=torch.long)
        fields = {f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self) if f.name != "task"}
        return ConceptSample(task=self.task, **fields)

    def counterfactual(self, concept: str, values: Tensor) -> ConceptSample:
        """The exact counterfactual: concept set to `values` ([batch] long), all else (U) unchanged."""
        c = concept_index(concept)
        values = torch.as_tensor(values, dtype=torch.long).expand(len(self))
        if values.min() < 0 or values.max() >= len(VALUES[concept]):
            raise InterpError(f"values of {concept!r} must be in 0..{len(VALUES[concept]) - 1}")
        new = self.values.clone()
        new[:, c] = values
        return self.task.render(new, self.order, self.noun, self.synonym, self.intensity, self.tone, self.eps)

    def adjective_position(self, concept: str) -> Tensor:
        """[batch] long: the position of `concept`'s adjective (the only token its value sets)."""
        slot = (self.order == concept_index(concept)).long().argmax(1)  # [batch]
        return 1 + OPENER + CLAUSE * slot + ADJ_OFFSET

    def phrase_span(self, concept: str) -> tuple[Tensor, Tensor]:
        """([batch], [batch]): start and end (exclusive) positions of `concept`'s clause."""
        start = self.adjective_position(concept) - ADJ_OFFSET
        return start, start + CLAUSE - 1

    def texts(self) -> list[str]:
        """The reviews as text (without `<bos>`)."""
        return [words_to_text([TASK_VOCAB[i] for i in row[1:]]) for row in self.tokens.tolist()]

    def value_names(self, concept: str) -> list[str]:
        """The value of `concept` for each example, as a name (e.g. `"good"`)."""
        names = VALUES[concept]
        return [names[v] for v in self.values[:, concept_index(concept)].tolist()]


@dataclass(frozen=True)
class Concepts(Task):
    """Reviews whose label follows from four concepts; see the module docstring.

    Example:
        >>> task = Concepts()
        >>> s = task.sample(2, seed=0)
        >>> s.texts()[0], s.value_names("food")[0], LABELS[int(s.label[0])]
        >>> batch = task.generate(8, seed=0)  # clean vs. counterfactual with `food` changed
    """

    concept: str = "food"
    """The concept that `generate`'s corrupted prompts change (to a uniformly drawn other value)."""
    weights: tuple[float, ...] = (1.0, 0.75, 0.5, 0.0)
    """Weight of each concept in the label rule (order of `CONCEPTS`); 0 means the label ignores it."""
    noise: float = 0.5
    """Standard deviation of the Gaussian noise added to the score before thresholding."""
    confounding: float = 0.0
    """Probability that `price` is not drawn independently but follows `food` (good food -> high price)."""

    name: ClassVar[str] = "concepts"
    concepts: ClassVar[tuple[str, ...]] = CONCEPTS
    values: ClassVar[dict[str, tuple[str, ...]]] = VALUES
    labels: ClassVar[tuple[str, ...]] = LABELS
    label_ids: ClassVar[tuple[int, ...]] = LABEL_IDS
    vocab_size: ClassVar[int] = len(TASK_VOCAB)

    def __post_init__(self) -> None:
        concept_index(self.concept)
        if len(self.weights) != len(CONCEPTS):
            raise InterpError(f"concepts weights must have {len(CONCEPTS)} entries ({', '.join(CONCEPTS)})")
        if self.noise < 0 or not 0 <= self.confounding <= 1:
            raise InterpError("concepts noise must be >= 0 and confounding in [0, 1]")

    @property
    def corrupted_positions(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.concept,)

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The tokenizer of this task (see `tokenizer()`)."""
        return tokenizer()

    # -- sampling and rendering --------------------------------------------------------------------
    def sample(self, n: int, seed: int = 0) -> ConceptSample:
        """`n` reviews, a deterministic function of (config, n, seed)."""
        check_count(n, seed)
        rng = np.random.default_rng([seed, 0xC0CE])
        k = len(CONCEPTS)
        values = rng.integers(0, 3, size=(n, k))
        follow = rng.random(n) < self.confounding
        price, food = CONCEPTS.index("price"), CONCEPTS.index("food")
        values[follow, price] = values[follow, food]  # good food (2) -> high price (2)
        order = np.argsort(rng.random((n, k)), axis=1)
        as_long = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
        return self.render(
            as_long(values),
            as_long(order),
            as_long(rng.integers(0, 2, size=(n, k))),
            as_long(rng.integers(0, 2, size=(n, k))),
            as_long(rng.integers(0, len(INTENSITIES), size=(n, k))),
            as_long(rng.integers(0, len(TONES), size=n)),
            torch.as_tensor(rng.normal(0.0, 1.0, size=n) * self.noise, dtype=torch.float32),
        )

    def render(
        self,
        values: Tensor,
        order: Tensor,
        noun: Tensor,
        synonym: Tensor,
        intensity: Tensor,
        tone: Tensor,
        eps: Tensor,
    ) -> ConceptSample:
        """Texts and labels for given concept values and exogenous noise (the structural equations)."""
        rows = []
        columns = (values, order, noun, synonym, intensity, tone)
        for v, o, nn_, s, i, t in zip(*(x.tolist() for x in columns), strict=True):
            words: list[str] = [TONES[t][0], ","]
            for slot, c in enumerate(o):
                concept = CONCEPTS[c]
                words += ["the", NOUNS[concept][nn_[c]], "was", INTENSITIES[i[c]][0]]
                words += [ADJECTIVES[concept][v[c]][s[c]], SEPARATORS[slot]]
            rows.append([BOS_ID] + [TOKEN_ID[w] for w in words + list(ENDING)])
        score = self.score(values, intensity, tone)
        return ConceptSample(
            task=self,
            values=values,
            order=order,
            noun=noun,
            synonym=synonym,
            intensity=intensity,
            tone=tone,
            eps=eps,
            tokens=torch.tensor(rows, dtype=torch.long),
            label=_bin(score + eps),
            rule_label=_bin(score),
        )

    def score(self, values: Tensor, intensity: Tensor, tone: Tensor) -> Tensor:
        """[batch] float: the noise-free score `tone + sum_c weight_c * polarity_c * intensity_c`."""
        polarity = torch.tensor([POLARITY[c] for c in CONCEPTS])  # [concept, value]
        scale = torch.tensor([s for _, s in INTENSITIES])  # [intensity]
        cols = torch.arange(len(CONCEPTS))
        pol = polarity[cols, values]  # [batch, concept]
        shift = torch.tensor([s for _, s in TONES])[tone]  # [batch]
        return shift + (pol * scale[intensity] * torch.tensor(self.weights)).sum(1)

    def label_probs(self, sample: ConceptSample) -> Tensor:
        """[batch, label]: P(label | concepts, U without eps), the Bayes-optimal prediction."""
        score = self.score(sample.values, sample.intensity, sample.tone).tolist()
        if self.noise == 0:
            return torch.nn.functional.one_hot(_bin(torch.tensor(score)), len(LABELS)).float()
        cdf = lambda x: 0.5 * (1 + erf(x / (self.noise * sqrt(2))))  # noqa: E731
        rows = [
            [cdf(-THRESHOLD - s), cdf(THRESHOLD - s) - cdf(-THRESHOLD - s), 1 - cdf(THRESHOLD - s)]
            for s in score
        ]
        return torch.tensor(rows)

    # -- the Task interface ------------------------------------------------------------------------
    def generate(self, n: int, seed: int = 0) -> TaskBatch:
        """Clean reviews and their exact counterfactuals with `self.concept` changed.

        `answer` is the clean rule label's token; `wrong` the counterfactual's rule label when it
        differs, else the next label. Positions: `END` and each concept's adjective.
        """
        sample = self.sample(n, seed)
        c = concept_index(self.concept)
        shift = torch.as_tensor(np.random.default_rng([seed, 0xCF]).integers(1, 3, size=n), dtype=torch.long)
        cf = sample.counterfactual(self.concept, (sample.values[:, c] + shift) % 3)
        label_ids = torch.tensor(LABEL_IDS)
        other = torch.where(cf.rule_label != sample.rule_label, cf.rule_label, (sample.rule_label + 1) % 3)
        variables: dict[str, list] = {k: sample.value_names(k) for k in CONCEPTS}
        variables["label"] = [LABELS[i] for i in sample.rule_label.tolist()]
        variables["noisy_label"] = [LABELS[i] for i in sample.label.tolist()]
        variables[f"counterfactual_{self.concept}"] = cf.value_names(self.concept)
        positions = {k: sample.adjective_position(k) for k in CONCEPTS}
        positions["END"] = torch.full((n,), END, dtype=torch.long)
        return TaskBatch(
            task=self.name,
            seed=seed,
            clean=sample.tokens,
            corrupted=cf.tokens,
            answer=label_ids[sample.rule_label],
            wrong=label_ids[other],
            positions=positions,
            variables=variables,
            clean_text=tuple(sample.texts()),
            corrupted_text=tuple(cf.texts()),
        )

    def training_batch(self, n: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """(input_ids, labels) [batch, pos]: the *noisy* label's token supervised at `END` only."""
        sample = self.sample(n, seed=int(rng.integers(2**62)))
        labels = torch.full_like(sample.tokens, -100)
        labels[:, END] = torch.tensor(LABEL_IDS)[sample.label]
        return sample.tokens, labels


def _bin(score: Tensor) -> Tensor:
    """[batch] long label index: 0 below -THRESHOLD, 2 above THRESHOLD, 1 between."""
    return (score > -THRESHOLD).long() + (score > THRESHOLD).long()
