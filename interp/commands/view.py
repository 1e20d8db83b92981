"""`interp view DIR [--port P]`: serve a result folder to a local browser until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command()
    def view(
        folder: Path = typer.Argument(
            ..., help="A result folder (interp demo, sae train, patch, circuit, ...)."
        ),
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="Local port (0: any free port)."),
        open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    ) -> None:
        """Browse a result folder: graphs, SAE features, heatmaps and attention patterns (offline)."""
        from interp.view.server import ViewServer

        server = ViewServer(folder, port)
        Console(stderr=True).print(
            f"Viewing [cyan]{folder}[/cyan] at [bold]{server.url}[/bold] (Ctrl-C to stop)", highlight=False
        )
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
