"""The viewer's HTML page, served (assets linked) or standalone (assets and data inlined).

Every script and style ships in `interp/view/static/` (plain JS drawing SVG, no third-party code), so
the page works offline; the standalone form is what `interp.view.show` puts in a notebook.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

ASSETS = ("viewer.js", "viewer.css")
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def asset(name: str) -> str:
    """The text of a shipped asset (`viewer.js`, `viewer.css`, `index.html`)."""
    return resources.files("interp.view").joinpath("static", name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(data, allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def served_page() -> str:
    """The page the server returns: it loads `static/*` and fetches `api/bundle`."""
    return asset("index.html").replace("{{HEAD}}", (
        '<link rel="stylesheet" href="static/viewer.css">\n<script src="static/viewer.js"></script>'
    )).replace("{{DATA}}", "")  # fmt: skip


def standalone_page(bundle: dict[str, Any], folder: str | Path | None = None) -> str:
    """One self-contained HTML document: assets inlined, the bundle embedded, figures as data URIs."""
    figures: dict[str, str] = {}
    if folder is not None:
        for view in bundle["views"]:
            for name in view.get("figures", []):
                path = Path(folder) / name
                mime = _MIME.get(path.suffix.lower())
                if mime and path.is_file() and path.stat().st_size < 4 * 2**20:
                    figures[name] = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
    head = f"<style>{asset('viewer.css')}</style>\n<script>{asset('viewer.js')}</script>"
    data = f"<script>window.INTERP_VIEW = {_script_json({'bundle': bundle, 'figures': figures})};</script>"
    return asset("index.html").replace("{{HEAD}}", head).replace("{{DATA}}", data)


def iframe(page: str, height: int = 640) -> str:
    """`page` in an iframe's srcdoc: its scripts run in a notebook's output cell, isolated from it."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{height}px;'
        'border:1px solid #ddd;border-radius:4px" sandbox="allow-scripts"></iframe>'
    )
