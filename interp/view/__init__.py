"""A viewer over result folders: `interp view DIR` in a browser, `interp.view.show(result)` in Jupyter.

Graphs (circuits, attribution graphs), SAE features, patching/tracing heatmaps and attention
patterns, drawn by plain JavaScript + SVG shipped in `static/` (works offline). Reads result files
only; never imports `saes` or `circuits`.
"""

from interp.view.bundle import ViewError, bundle_of, load_folder
from interp.view.notebook import show
from interp.view.server import ViewServer, serve
from interp.view.tokens import display_tokens

__all__ = ["ViewError", "ViewServer", "bundle_of", "display_tokens", "load_folder", "serve", "show"]
