"""Synthetic tasks with counterfactual pairs: `names()`, `get(name, **cfg).generate(n, seed)`."""

from interp.tasks.base import Task, TaskBatch
from interp.tasks.registry import get, names
from interp.tasks.tokenizer import same_vocabulary, save_tokenizer, tokenizer, words_to_text
from interp.tasks.vocab import VOCAB

__all__ = [
    "VOCAB",
    "Task",
    "TaskBatch",
    "get",
    "names",
    "same_vocabulary",
    "save_tokenizer",
    "tokenizer",
    "words_to_text",
]
