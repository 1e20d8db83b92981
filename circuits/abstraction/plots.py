"""Figures for causal-abstraction results (matplotlib is imported only when a figure is drawn).

>>> heatmap([[1.0, 0.5]], ["blocks.0.hook_resid_post"], ["X", "END"], "IIA of left", "iia.png")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from interp.io import share


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> None:
    """Write `fig` atomically (temp file in the same folder, then rename); format from the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, bbox_inches="tight", dpi=150)
        share(tmp)  # mkstemp makes private 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def heatmap(
    values: Sequence[Sequence[float | None]],
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    path: str | Path | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
):
    """A labelled heatmap (missing cells blank), values written in the cells; returns the figure."""
    plt = _pyplot()
    import numpy as np

    data = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(cols), 0.8 + 0.35 * len(rows)))
    image = ax.imshow(data, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), labels=list(cols))
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=7)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if not np.isnan(data[i, j]):
                ax.text(
                    j,
                    i,
                    f"{data[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="w" if data[i, j] < 0.6 else "k",
                )
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    if path is not None:
        save_figure(fig, path)
    return fig


def bars(
    groups: dict[str, dict[str, float]], title: str, path: str | Path | None = None, ylabel: str = "IIA"
):
    """Grouped bars: `{group: {series: value}}` (e.g. location -> {trained, control}); returns the figure."""
    plt = _pyplot()
    names = list(groups)
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(names) * len(series), 3.2))
    w = 0.8 / max(1, len(series))
    for k, s in enumerate(series):
        ax.bar(
            [i + k * w for i in range(len(names))], [groups[n].get(s, 0.0) for n in names], width=w, label=s
        )
    ax.set_xticks(
        [i + 0.4 - w / 2 for i in range(len(names))], labels=names, rotation=30, ha="right", fontsize=7
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    if path is not None:
        save_figure(fig, path)
    return fig
