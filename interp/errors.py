"""Error types. Every error raised on bad user input is an `InterpError` with one message that names the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InterpError(ValueError):
    """Bad input to the toolkit: the message says what was wrong and how to fix it."""


class HookNameError(InterpError, KeyError):
    """A hook name the model does not have."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ShapeError(InterpError):
    """A tensor given to an intervention has the wrong shape."""


def closest(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The `n` candidates most similar to `name`, best first."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.4)
