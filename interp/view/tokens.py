"""Token pieces as the text they stand for, so a context reads as the prompt did.

Tokenizers mark word boundaries differently: WordPiece (BERT, MiniLM) marks a piece that continues a
word with `##`; byte-level BPE (GPT-2, Llama 3, Qwen) maps bytes to printable characters, a leading
space becoming `Ġ` and a newline `Ċ`; SentencePiece (Llama 2, Gemma) marks a word start with `▁` and
spells bytes it has no piece for as `<0x0A>`. `display_tokens` turns a list of pieces into strings
that, joined, give back the text (up to WordPiece's lost spacing around punctuation).

    >>> display_tokens(["he", "had", "##n", "been", "[SEP]"], "wordpiece")
    ['he', ' had', 'n', ' been', ' [SEP]']
    >>> display_tokens(["The", "Ġcat", "Ċ"], "bytelevel")
    ['The', ' cat', '\\n']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

Scheme = Literal["wordpiece", "bytelevel", "sentencepiece", "words"]
SCHEMES: tuple[str, ...] = ("wordpiece", "bytelevel", "sentencepiece", "words")
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}'%")


@cache
def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's bytes -> printable characters map (the byte-level BPE alphabet)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def scheme_of(tokenizer: Any) -> Scheme:
    """The piece convention of a Hugging Face tokenizer, read from its fast backend (model, decoder)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        model = type(backend.model).__name__
        decoder = type(backend.decoder).__name__ if backend.decoder is not None else ""
        pre = repr(backend.pre_tokenizer)
        if model == "WordPiece" or (model == "WordLevel" and decoder == "WordPiece"):
            return "wordpiece" if model == "WordPiece" else "words"
        if decoder == "ByteLevel" or "ByteLevel" in pre:
            return "bytelevel"
        if decoder in ("Metaspace", "Sequence") or "Metaspace" in pre or model == "Unigram":
            return "sentencepiece"
    name = type(tokenizer).__name__.lower()
    if "bert" in name:
        return "wordpiece"
    if "gpt2" in name:
        return "bytelevel"
    return "words"


def guess_scheme(pieces: Sequence[str]) -> Scheme:
    """The convention of pieces whose tokenizer is unknown, from the markers they carry."""
    text = "".join(pieces)
    if "Ġ" in text or "Ċ" in text:
        return "bytelevel"
    if "▁" in text:
        return "sentencepiece"
    if any(p.startswith("##") and len(p) > 2 for p in pieces):
        return "wordpiece"
    return "words"


def _bytelevel(piece: str) -> str:
    table = _byte_decoder()
    if not all(ch in table for ch in piece):
        return piece  # a special token such as <|endoftext|>
    return bytes(table[ch] for ch in piece).decode("utf-8", errors="replace")


def display_tokens(pieces: Sequence[str], scheme: str | None = None) -> list[str]:
    """One display string per piece (leading spaces where a word starts); see the module docstring."""
    pieces = [str(p) for p in pieces]
    scheme = scheme or guess_scheme(pieces)
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if scheme == "bytelevel":
            out.append(_bytelevel(piece))
        elif scheme == "sentencepiece":
            byte = _BYTE_PIECE.match(piece)
            out.append(chr(int(byte.group(1), 16)) if byte else piece.replace("▁", " "))
        elif scheme == "wordpiece" and piece.startswith("##") and len(piece) > 2:
            out.append(piece[2:])
        elif i == 0 or piece[:1] in _NO_SPACE_BEFORE and len(piece) == 1:
            out.append(piece)
        else:  # wordpiece word starts and word-level tokens: a space before each word
            out.append(" " + piece)
    return out


def tokenizer_display(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """`display_tokens` of token ids under `tokenizer`'s own convention.

    Example:
        >>> tokenizer_display(model.tokenizer, [101, 2002, 2018, 102])  # doctest: +SKIP
        ['[CLS]', ' he', ' had', ' [SEP]']
    """
    pieces = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    return display_tokens(pieces, scheme_of(tokenizer))
