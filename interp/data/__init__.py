"""Data shipped with the package: the Shakespeare corpus as a `datasets.Dataset`."""

from interp.data.corpus import CORPUS_PATH, passages, shakespeare, shakespeare_works

__all__ = ["CORPUS_PATH", "passages", "shakespeare", "shakespeare_works"]
