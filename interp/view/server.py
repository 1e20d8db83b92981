"""`interp view DIR`: a local HTTP server (standard library) over one result folder.

Routes: `/` the page, `/static/<asset>` the shipped script and style, `/api/bundle` the folder read
into views (`interp.view.bundle`, re-read on every request so a re-run shows up on reload), and
`/files/<figure>` the folder's figures (PNG/SVG/JPEG only, nothing outside the folder).
Binds to 127.0.0.1 only.
"""

from __future__ import annotations

import errno
import json
import logging
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from interp.view.bundle import FIGURE_SUFFIXES, ViewError, load_folder
from interp.view.page import ASSETS, asset, served_page

logger = logging.getLogger(__name__)
HOST = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
        logger.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        path = unquote(urlparse(self.path).path)
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, served_page().encode(), "text/html; charset=utf-8")
        elif path.startswith("/static/") and path.removeprefix("/static/") in ASSETS:
            name = path.removeprefix("/static/")
            kind = "text/css" if name.endswith(".css") else "text/javascript"
            self._send(HTTPStatus.OK, asset(name).encode(), f"{kind}; charset=utf-8")
        elif path == "/api/bundle":
            try:
                body, status = json.dumps(load_folder(self.server.folder), allow_nan=False), HTTPStatus.OK
            except ViewError as exc:
                body, status = json.dumps({"error": str(exc)}), HTTPStatus.UNPROCESSABLE_ENTITY
            self._send(status, body.encode(), "application/json")
        elif path.startswith("/files/"):
            self._file(path.removeprefix("/files/"))
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def _file(self, name: str) -> None:
        root = self.server.folder.resolve()
        target = (root / name).resolve()
        if target.suffix.lower() not in FIGURE_SUFFIXES or root not in target.parents or not target.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, target.read_bytes(), kind)


class ViewServer(ThreadingHTTPServer):
    """The viewer's server over `folder`; `url` is where to point a browser."""

    daemon_threads = True

    def __init__(self, folder: str | Path, port: int = 8765) -> None:
        self.folder = Path(folder)
        load_folder(self.folder)  # refuse a bad folder before binding
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise ViewError(
                    f"port {port} is {'in use' if exc.errno == errno.EADDRINUSE else 'not allowed'}; "
                    "pass another with --port P (or --port 0 for any free port)"
                ) from exc
            raise

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def start(self) -> threading.Thread:
        """Serve on a background thread (for tests and notebooks); stop with `shutdown()`."""
        thread = threading.Thread(target=self.serve_forever, name="interp-view", daemon=True)
        thread.start()
        return thread


def serve(folder: str | Path, port: int = 8765) -> ViewServer:
    """Start a viewer over `folder` on a background thread and return it (`.url`, `.shutdown()`).

    Example:
        >>> server = serve("demo-report", port=0)  # doctest: +SKIP
        >>> server.url, server.shutdown()  # doctest: +SKIP
    """
    server = ViewServer(folder, port)
    server.start()
    return server
