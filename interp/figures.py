"""The one heatmap: labelled cells with a colour bar, drawn the same way for every result.

`heatmap` draws one grid on an axes (the attention patterns of `interp demo`); `heatmap_figure` builds
a whole figure of one or more grids sharing a colour scale (`circuits.results.LabelledArray.plot`,
the IIA grids of `circuits.abstraction`). Figures are built without pyplot, and matplotlib is imported
only when one is drawn, so importing this module changes no global state. Save them with
`interp.io.save_figure`.

>>> fig = heatmap_figure([[[0.1, 0.9], [0.5, None]]], ["L0", "L1"], ["S1", "END"], title="IIA")
>>> save_figure(fig, "iia.png", dpi=150, tight=True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def rotated(ticks: Sequence[str]) -> bool:
    """Whether column ticks are set vertically: many of them, or long ones."""
    return len(ticks) > 6 or max((len(t) for t in ticks), default=0) > 4


def heatmap(
    ax: Any,
    values: Any,
    rows: Sequence[str] | None = None,
    cols: Sequence[str] | None = None,
    *,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = False,
    rotate: bool | None = None,
    fontsize: float | None = None,
    aspect: str = "auto",
) -> Any:
    """Draw `values` [row, col] (NaN or None: a blank cell) on `ax`; returns the image for a colour bar.

    `rows` / `cols` label the ticks (None: no ticks on that axis); column ticks are vertical when
    `rotate` (None: when `rotated(cols)`). `annotate` writes each value in its cell, in black or white
    to stay readable on the cell's colour.
    """
    data = np.array(values, dtype=float)  # [row, col]; None becomes NaN
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
    size = {} if fontsize is None else {"fontsize": fontsize}
    if cols is None:
        ax.set_xticks([])
    else:
        vertical = rotated(cols) if rotate is None else rotate
        ax.set_xticks(range(data.shape[1]), list(cols), rotation=90 if vertical else 0, **size)
    if rows is None:
        ax.set_yticks([])
    else:
        ax.set_yticks(range(data.shape[0]), list(rows), **size)
    if annotate:
        for (i, j), v in np.ndenumerate(data):
            if math.isnan(v):
                continue
            r, g, b, _ = image.cmap(image.norm(v))
            colour = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"  # readable on dark cells
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color=colour)
    return image


def heatmap_figure(
    panels: Sequence[Any],
    rows: Sequence[str],
    cols: Sequence[str],
    *,
    title: str = "",
    panel_titles: Sequence[str] = (),
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool | None = None,
    xlabel: str = "",
    ylabel: str = "",
    colorbar_label: str | None = None,
) -> Any:
    """A figure of `panels` (each [row, col], side by side, one colour scale and bar), sized to the
    grid and its labels. `annotate` None: values in the cells when the grid is at most 16 x 16.
    Returns the matplotlib `Figure` (no pyplot)."""
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), len(cols)
    annotate = annotate if annotate is not None else (n_rows <= 16 and n_cols <= 16)
    col_text = max((len(t) for t in cols), default=0)
    row_text = max((len(t) for t in rows), default=0)
    width = max(3.5, 0.5 * n_cols + 2.0 + 0.07 * row_text)
    height = max(2.2, 0.38 * n_rows + 1.4 + (0.075 * col_text if rotated(cols) else 0.2))
    figure = Figure(figsize=(width * len(panels), height), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for k, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        image = heatmap(ax, panel, rows, cols, cmap=cmap, vmin=vmin, vmax=vmax, annotate=annotate)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if k < len(panel_titles):
            ax.set_title(panel_titles[k], fontsize=9)
    figure.colorbar(image, ax=list(axes), label=colorbar_label or None, shrink=0.9)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure
