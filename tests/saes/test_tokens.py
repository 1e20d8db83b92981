"""`saes.tokens.encode`: the tokenizer's own ids, through the Rust backend's fast path only where safe."""

from __future__ import annotations

import copy

import pytest

import interp
from saes import tokens

TEXTS = ["To be, or not to be: that is the question.", "", "Hello   world\nagain", "naïve café ☃"]


@pytest.fixture(params=["shakespeare-tiny", "minilm"])
def tokenizer(request):
    # a copy per test: the verdict is kept per tokenizer object
    return copy.deepcopy(interp.load(request.param).tokenizer)


def test_same_ids_as_the_call_and_the_fast_path_is_taken(tokenizer, monkeypatch):
    expected = tokenizer(TEXTS)["input_ids"]
    assert tokens.encode(tokenizer, TEXTS) == expected  # first call: both ways, compared
    assert tokens._VERDICT[tokenizer] is True
    monkeypatch.setattr(type(tokenizer), "__call__", lambda self, texts: pytest.fail("the call ran"))
    assert tokens.encode(tokenizer, TEXTS) == expected
    more = ["Second batch of text.", "and another"]
    assert tokens.encode(tokenizer, more) == [e.ids for e in tokenizer.backend_tokenizer.encode_batch(more)]


def test_a_tokenizer_whose_call_adds_more_keeps_its_call(tokenizer):
    class Extra(type(tokenizer)):
        def __call__(self, texts, **kwargs):
            out = super().__call__(texts, **kwargs)
            out["input_ids"] = [[*ids, 7] for ids in out["input_ids"]]
            return out

    extra = copy.deepcopy(tokenizer)
    extra.__class__ = Extra
    expected = extra(TEXTS)["input_ids"]
    assert tokens.encode(extra, TEXTS) == expected
    assert tokens._VERDICT[extra] is False
    assert tokens.encode(extra, TEXTS[:1]) == expected[:1]


def test_backend_truncation_keeps_the_call(tokenizer):
    tokenizer.backend_tokenizer.enable_truncation(max_length=3)
    assert tokens._fast_encoder(tokenizer) is None
    assert tokens.encode(tokenizer, TEXTS) == tokenizer(TEXTS)["input_ids"]


def test_a_tokenizer_without_a_rust_backend_is_called():
    class Plain:
        def __call__(self, texts):
            return {"input_ids": [[len(t)] for t in texts]}

    assert tokens.encode(Plain(), ["ab", "c"]) == [[2], [1]]
