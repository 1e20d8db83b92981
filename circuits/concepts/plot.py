"""Figures of a `ConceptReport`: grouped bars of each score, one group per concept, one bar per method.

Matplotlib is imported inside `plot_report` only, and the figure is built without pyplot, so importing
this module changes no global state; the file is written atomically (`interp.io.save_figure`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from interp.io import save_figure

if TYPE_CHECKING:
    from circuits.concepts.explain import ConceptReport

PANELS = (
    ("icace_error", "ICaCE error (L2, lower is better)"),
    ("order_faithfulness", "order-faithfulness"),
    ("direction_agreement", "direction agreement"),
)


def plot_report(report: ConceptReport, path: str | Path) -> Path:
    """Write the three-panel score figure to `path` (format from its suffix); returns the path.

    Example:
        >>> plot_report(report, "out/concepts.png")
    """
    from matplotlib.figure import Figure

    path = Path(path)
    rows = report.table()
    methods = list(report.scores)
    concepts = list(dict.fromkeys(r["concept"] for r in rows))
    value = {(r["method"], r["concept"]): r for r in rows}
    fig = Figure(figsize=(4.2 * len(PANELS), 3.6), layout="constrained")
    axes = fig.subplots(1, len(PANELS))
    width = 0.8 / max(1, len(methods))
    for ax, (key, title) in zip(axes, PANELS, strict=True):
        for m, method in enumerate(methods):
            heights = [value[(method, c)][key] for c in concepts]
            xs = [i + (m - (len(methods) - 1) / 2) * width for i in range(len(concepts))]
            ax.bar(xs, [h if h is not None else 0.0 for h in heights], width, label=method)
        ax.set_xticks(range(len(concepts)), concepts)
        ax.set_title(title, fontsize=10)
        if key != "icace_error":
            ax.set_ylim(0, 1.05)
            ax.axhline(0.5 if key == "order_faithfulness" else 0.0, color="grey", lw=0.6, ls="--")
    axes[0].legend(fontsize=7)
    save_figure(fig, path, dpi=120)
    return path
