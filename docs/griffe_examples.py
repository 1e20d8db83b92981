"""A griffe extension for the API pages: the project's docstrings head their doctests `Example:`,
which the Google parser reads as an admonition of Markdown text; renamed `Examples:`, they render as
code. The source stays as it is."""

from __future__ import annotations

import re
from typing import Any

import griffe

_HEADING = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _HEADING.sub(r"\1Examples:", obj.docstring.value)
