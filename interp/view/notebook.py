"""`interp.view.show(result)`: the viewer inline in a Jupyter notebook, no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp.io import atomic_write_text
from interp.view.bundle import bundle_of
from interp.view.page import iframe, standalone_page


class Inline:
    """What `show` returns: Jupyter displays it through `_repr_html_`; `.html` is the whole page."""

    def __init__(self, html: str, height: int) -> None:
        self.html, self.height = html, height

    def _repr_html_(self) -> str:
        return iframe(self.html, self.height)

    def save(self, path: str | Path) -> Path:
        """Write the standalone page (opens in any browser, offline), atomically."""
        return atomic_write_text(path, self.html)


def show(result: Any, *, title: str | None = None, height: int = 640) -> Inline:
    """Render a result folder, `Circuit`, `LabelledArray`, SAE `EvalResult` or attribution graph inline.

    Example:
        >>> interp.view.show("demo-report")            # doctest: +SKIP
        >>> interp.view.show(patching_result)          # doctest: +SKIP
    """
    bundle = bundle_of(result, title)
    folder = result if isinstance(result, str | Path) else None
    return Inline(standalone_page(bundle, folder), height)
