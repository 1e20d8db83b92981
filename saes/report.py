"""Write an `EvalResult` to a folder: `eval.json`, `density.png` (feature density histogram) and
`features.html`, a static, self-contained feature browser (top contexts with per-token activation
shading, top promoted tokens, density)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from interp.io import atomic_write_bytes, atomic_write_json, atomic_write_text, figure_bytes
from saes.evaluation import EvalResult

EVAL_FILENAME = "eval.json"
DENSITY_FILENAME = "density.png"
BROWSER_FILENAME = "features.html"


def density_figure(density: torch.Tensor, title: str = "") -> Figure:
    """Histogram of log10 feature density (dead latents counted separately in the title)."""
    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.subplots()
    alive = density[density > 0].double()
    if alive.numel():
        ax.hist(alive.log10().cpu().numpy(), bins=40, color="#3b6ea8")
    dead = int((density == 0).sum())
    ax.set_xlabel("log10(feature firing frequency)")
    ax.set_ylabel("latents")
    summary = f"{dead} dead of {density.numel()} latents"
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=10, wrap=True)
    fig.tight_layout()
    return fig


def write_report(
    result: EvalResult, out_dir: str | Path, *, title: str = "SAE", extra: dict[str, Any] | None = None
) -> Path:
    """Write `eval.json`, `density.png` and `features.html` into `out_dir` (atomically, file by file).

    Example:
        >>> saes.write_report(saes.evaluate(sae, model, tokens), "report/")  # doctest: +SKIP
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / EVAL_FILENAME, {**(extra or {}), **result.to_dict()})
    png = figure_bytes(density_figure(result.density, title), "png")
    atomic_write_bytes(out / DENSITY_FILENAME, png)
    atomic_write_text(out / BROWSER_FILENAME, feature_browser_html(result, title, png))
    return out


def _context_html(ctx: dict[str, Any], peak: float) -> str:
    spans = []
    for i, (tok, act) in enumerate(zip(ctx["tokens"], ctx["acts"], strict=True)):
        alpha = 0.0 if peak <= 0 else max(0.0, min(1.0, act / peak))
        border = "border-bottom:2px solid #222;" if i == ctx["position"] else ""
        spans.append(
            f'<span title="{act:.3g}" style="background:rgba(220,60,40,{alpha:.2f});{border}">'
            f"{html.escape(tok).replace(' ', '&nbsp;') or '&nbsp;'}</span>"
        )
    return "<div class='ctx'>" + "".join(spans) + "</div>"


def feature_browser_html(result: EvalResult, title: str, density_png: bytes | None = None) -> str:
    """The browser page as one HTML string (the density figure inlined as a data URI)."""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{'n/a' if v is None else f'{v:.4g}'}</td></tr>"
        for k, v in result.metrics.items()
    )
    img = ""
    if density_png:
        img = f"<img alt='feature density' src='data:image/png;base64,{base64.b64encode(density_png).decode()}'>"
    cards = []
    for card in result.features:
        logits = ", ".join(f"<code>{html.escape(t)}</code> {v:+.2f}" for t, v in card.top_logits) or "n/a"
        contexts = "".join(_context_html(c, card.max_activation) for c in card.contexts)
        cards.append(
            f"<section id='f{card.index}'><h2>Feature {card.index}</h2>"
            f"<p>density {card.density:.3g} &middot; max activation {card.max_activation:.3g}</p>"
            f"<p>top promoted tokens: {logits}</p>{contexts}</section>"
        )
    index = " ".join(f"<a href='#f{c.index}'>{c.index}</a>" for c in result.features)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)} feature browser</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; }} td {{ padding: 2px 10px; border-bottom: 1px solid #ddd; }}
.ctx {{ font-family: ui-monospace, monospace; margin: 4px 0; white-space: nowrap; overflow-x: auto; }}
section {{ border-top: 1px solid #ccc; margin-top: 1em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{rows}</table>
{img}
<p>features: {index}</p>
{"".join(cards)}
</body></html>
"""
