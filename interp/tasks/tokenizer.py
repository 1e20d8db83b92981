"""The word-level tokenizer shared by every task and every task-trained zoo model.

A `tokenizers` WordLevel model over `vocab.VOCAB`: whitespace and punctuation split words, `<bos>` is
prepended to every sequence, and decoding joins words with spaces and re-attaches punctuation, so
`decode(encode(text), skip_special_tokens=True) == text` for every task text.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from interp.tasks.vocab import BOS_ID, TOKEN_ID

# decoding re-attaches exactly these (tokenizers' WordPiece cleanup); texts are written to match
_ATTACHED = (",", ".", "?")


def words_to_text(words: list[str] | tuple[str, ...]) -> str:
    """The text whose tokens are `words`: spaces between words, none before punctuation.

    Example:
        >>> words_to_text(["Hi", ",", "Bob", "."])
        'Hi, Bob.'
    """
    text = " ".join(words)
    for mark in _ATTACHED:
        text = text.replace(f" {mark}", mark)
    return text


def _backend() -> Tokenizer:
    tok = Tokenizer(models.WordLevel(vocab=dict(TOKEN_ID), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", BOS_ID)]
    )
    return tok


def tokenizer() -> PreTrainedTokenizerFast:
    """A fresh Hugging Face tokenizer for all task texts (cheap to build, no files read).

    Example:
        >>> tok = tokenizer()
        >>> tok("When Mary and John went to the store").input_ids[:3]
        [2, 73, 7]
    """
    return PreTrainedTokenizerFast(
        tokenizer_object=_backend(),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=1024,
    )


def save_tokenizer(directory: str | Path) -> None:
    """Write the task tokenizer to `directory` in the standard Hugging Face layout."""
    tokenizer().save_pretrained(str(directory))


def same_vocabulary(tok: PreTrainedTokenizerFast) -> bool:
    """Whether `tok` maps every task word to the same id as the task tokenizer."""
    vocab = tok.get_vocab()
    return all(vocab.get(word) == i for word, i in TOKEN_ID.items())
