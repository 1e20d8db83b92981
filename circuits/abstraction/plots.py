"""Figures for causal-abstraction results (matplotlib is imported only when a figure is drawn, and
figures are built without pyplot). IIA grids are `interp.figures.heatmap_figure` (see `IIAResult.plot`).

>>> bars({"L0": {"trained": 0.9, "random init": 0.5}}, "IIA vs control", "bars.png")
"""

from __future__ import annotations

from pathlib import Path

from interp.io import save_figure


def bars(
    groups: dict[str, dict[str, float]], title: str, path: str | Path | None = None, ylabel: str = "IIA"
):
    """Grouped bars: `{group: {series: value}}` (e.g. location -> {trained, control}); returns the figure."""
    from matplotlib.figure import Figure

    names = list(groups)
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    fig = Figure(figsize=(1.5 + 0.6 * len(names) * len(series), 3.2))
    ax = fig.add_subplot()
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
        save_figure(fig, path, dpi=150, tight=True)
    return fig
