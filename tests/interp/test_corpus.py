"""interp.data: the shipped Shakespeare corpus."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import pytest  # noqa: E402

from interp import data  # noqa: E402
from interp.errors import InterpError  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    return data.shakespeare("train"), data.shakespeare("validation")


def test_shipped_file_is_small():
    assert data.CORPUS_PATH.suffix == ".gz" and data.CORPUS_PATH.stat().st_size < 2_000_000


def test_loads_as_dataset(splits):
    train, val = splits
    for ds in splits:
        assert isinstance(ds, datasets.Dataset) and {"text", "title"} <= set(ds.column_names)
    assert len(train) > 4000 and 100 < len(val) < len(train) / 10
    assert sum(len(t) for t in train["text"]) > 3_000_000
    assert max(len(t) for t in train["text"]) <= 1000 and min(len(t) for t in train["text"]) > 0


def test_split_is_deterministic_and_disjoint(splits):
    train, val = splits
    again = data.shakespeare("validation")
    assert again["text"] == val["text"]
    assert not set(val["text"]) & set(train["text"])
    assert set(val["title"]) == set(train["title"])  # every work contributes to both


def test_cleaned_of_gutenberg_boilerplate():
    works = data.shakespeare_works()
    assert len(works) == 33 and any(w["title"] == "Hamlet" for w in works)
    for work in works:
        lower = work["text"].lower()
        assert "project gutenberg" not in lower and "gutenberg.org" not in lower
        assert "\r" not in work["text"] and "\n\n\n\n" not in work["text"]


def test_passages_pack_blocks():
    text = "A.\nline one\n\nB.\nline two\n\n" + "x" * 50 + "\n" + "y" * 50
    parts = data.passages(text, passage_chars=60)
    assert all(len(p) <= 60 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_bad_split():
    with pytest.raises(InterpError, match="validation"):
        data.shakespeare("test")
