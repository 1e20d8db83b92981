"""The `concepts` task: deterministic, fixed-length, and its counterfactuals change exactly one concept."""

from __future__ import annotations

import pytest
import torch

from interp import tasks
from interp.errors import InterpError
from interp.tasks.concepts import (
    ADJECTIVES,
    CONCEPTS,
    END,
    LABEL_IDS,
    SEQ_LEN,
    TASK_VOCAB,
    TOKEN_ID,
    Concepts,
    tokenizer,
)


@pytest.fixture(scope="module")
def sample():
    return Concepts().sample(200, seed=3)


def test_registered_and_deterministic():
    task = tasks.get("concepts")
    assert isinstance(task, Concepts) and "concepts" in tasks.names()
    a, b, c = task.sample(50, seed=7), task.sample(50, seed=7), task.sample(50, seed=8)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.label, b.label) and torch.equal(a.eps, b.eps)
    assert not torch.equal(a.tokens, c.tokens)
    batch1, batch2 = task.generate(20, seed=1), task.generate(20, seed=1)
    assert torch.equal(batch1.corrupted, batch2.corrupted) and batch1.clean_text == batch2.clean_text


def test_fixed_length_and_tokenizer_round_trip(sample):
    assert sample.tokens.shape == (200, SEQ_LEN) and END == SEQ_LEN - 1
    tok = tokenizer()
    assert tok(sample.texts()).input_ids == sample.tokens.tolist()
    assert tasks.same_vocabulary(tok)  # the shared words keep their ids; review words are appended
    assert TASK_VOCAB[: len(tasks.VOCAB)] == tasks.VOCAB
    assert tok.convert_tokens_to_ids(list(Concepts.labels)) == list(LABEL_IDS)
    assert {TASK_VOCAB[i] for i in sample.tokens[:, END].tolist()} == {"was"}


@pytest.mark.parametrize("concept", CONCEPTS)
def test_counterfactual_changes_exactly_one_concept_and_only_its_phrase(sample, concept):
    c = CONCEPTS.index(concept)
    target = torch.randint(0, 3, (len(sample),), generator=torch.Generator().manual_seed(c))
    cf = sample.counterfactual(concept, target)
    changed = target != sample.values[:, c]
    # concept values: exactly the edited column changes, and only where the target differs
    assert torch.equal(cf.values[:, c], target)
    others = [i for i in range(len(CONCEPTS)) if i != c]
    assert torch.equal(cf.values[:, others], sample.values[:, others])
    # exogenous noise is held fixed
    for name in ("order", "noun", "synonym", "intensity", "tone", "eps"):
        assert torch.equal(getattr(cf, name), getattr(sample, name))
    # tokens: exactly one differs (the concept's adjective) where the value changed, none elsewhere
    diff = cf.tokens != sample.tokens  # [batch, pos]
    assert torch.equal(diff.sum(1), changed.long())
    rows = changed.nonzero()[:, 0]
    where = diff[rows].long().argmax(1)
    assert torch.equal(where, sample.adjective_position(concept)[rows])
    start, end = sample.phrase_span(concept)
    assert bool(((where >= start[rows]) & (where < end[rows])).all())
    # the new token is one of the concept's own adjectives
    assert {TASK_VOCAB[t] for t in cf.tokens[rows, where].tolist()} <= {
        w for syn in ADJECTIVES[concept] for w in syn
    }


def test_generate_batch_differs_only_at_the_concept(sample):
    batch = Concepts(concept="price").generate(64, seed=2)
    diff = (batch.clean != batch.corrupted).nonzero()
    assert len(diff) == 64  # every corrupted prompt changes price to another value: one token each
    assert torch.equal(diff[:, 1], batch.positions["price"][diff[:, 0]])
    assert all(
        a != b for a, b in zip(batch.variables["price"], batch.variables["counterfactual_price"], strict=True)
    )
    assert set(batch.answer.tolist()) <= set(LABEL_IDS)


def test_label_rule_by_hand():
    task = Concepts(noise=0.0)
    # tone sadly (-0.5), food good (+1, very 1.5), service bad (-1, somewhat 0.5), price high (-1, quite 1)
    values = torch.tensor([[2, 0, 2, 1]])
    intensity = torch.tensor([[2, 0, 1, 2]])
    order = torch.tensor([[0, 1, 2, 3]])
    zeros = torch.zeros(1, 4, dtype=torch.long)
    tone = torch.tensor([0])
    s = task.render(values, order, zeros, zeros, intensity, tone, torch.zeros(1))
    score = -0.5 + 1.0 * 1.5 + 0.75 * (-0.5) + 0.5 * (-1.0)  # = 0.125 -> neutral
    assert task.score(values, intensity, tone).item() == pytest.approx(score)
    assert s.label.item() == s.rule_label.item() == 1
    assert s.texts()[0] == (
        "sadly, the food was very delicious, the service was somewhat rude, the price was quite expensive "
        "and the ambiance was very plain. overall it was"
    )
    happy = task.render(values, order, zeros, zeros, intensity, tone + 2, torch.zeros(1))
    assert happy.rule_label.item() == 2  # tone is not a concept, but it moves the label (+1.0 -> 1.125)
    probs = Concepts().label_probs(happy)
    assert probs.sum().item() == pytest.approx(1.0) and probs.argmax().item() == 2
    # the ignored concept: changing ambiance never changes the noise-free label
    many = Concepts().sample(300, seed=0)
    assert torch.equal(
        many.counterfactual("ambiance", torch.zeros(300, dtype=torch.long)).rule_label, many.rule_label
    )


def test_bad_input():
    with pytest.raises(InterpError, match="no concept 'taste'"):
        Concepts(concept="taste")
    with pytest.raises(InterpError, match="concepts: food"):
        Concepts().sample(2).counterfactual("taste", torch.zeros(2, dtype=torch.long))
    with pytest.raises(InterpError, match="must be in 0..2"):
        Concepts().sample(2).counterfactual("food", torch.tensor([0, 3]))
    with pytest.raises(InterpError):
        Concepts(weights=(1.0, 2.0))
    assert TOKEN_ID["delicious"] >= len(tasks.VOCAB)
