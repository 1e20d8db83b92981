"""The one writer: atomic files, figures and folders, and the provenance every run records.

Everything the toolkit writes goes through here, so every write behaves the same way:

- files (`atomic_write_text`, `atomic_write_json`, `atomic_write_bytes`, `save_figure`, or
  `atomic_path` for a writer that wants a file name) are written to a temporary file beside the
  target and renamed onto it: a crash leaves the old file (or none), never half a file;
- folders (`atomic_dir(out, force=...)`) are built under a temporary name and moved into place whole;
  an existing non-empty folder is replaced only with `force` (the CLI's `--force`), else refused with
  one line that says so; a run killed midway loses nothing (`clean_leftovers`);
- figures are saved without touching pyplot's state: `save_figure` closes the figure it saved and
  no other (closing them all would close a notebook's figures too);
- everything written gets the permissions an ordinary `open`/`mkdir` would give (`share`).

Every command that writes a folder writes `result.json` (inputs, config, seed, package versions,
metrics) beside its figures, through `write_result`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from interp.errors import InterpError

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def share(path: str | Path) -> None:
    """Give `path` the permissions an ordinary `open`/`mkdir` would (0666/0777 less the umask).

    Temporary files and folders (mkstemp, mkdtemp) and safetensors' writer create private 0600/0700
    entries; everything the toolkit writes gets the same permissions as its siblings instead.
    """
    path = Path(path)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())


def share_tree(root: str | Path) -> None:
    """`share` on `root` and everything under it (symlinks are left alone)."""
    root = Path(root)
    share(root)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            entry = Path(folder) / name
            if not entry.is_symlink():
                share(entry)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a writer that wants a file name (e.g. `savefig`);
    on success it gets the usual permissions and is renamed onto `path`, on error it is deleted.

    >>> with atomic_path("out/heatmap.png") as tmp:
    ...     figure.savefig(tmp, format="png")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        share(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- figures (matplotlib is never imported here: a figure arrives already drawn) --------------------
FIGURE_FORMATS = ("png", "pdf", "svg")


def figure_format(path: str | Path) -> str:
    """The figure format named by `path`'s suffix (png, pdf or svg), or an `InterpError`."""
    suffix = Path(path).suffix
    fmt = suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise InterpError(f"figure format {suffix or '(none)'!r} not supported; use one of .png, .pdf, .svg")
    return fmt


def figure_bytes(figure: Any, fmt: str = "png", *, dpi: float | None = None, tight: bool = False) -> bytes:
    """`figure` rendered as `fmt` bytes (`dpi` None: the figure's own; `tight`: crop to the drawing)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def save_figure(figure: Any, path: str | Path, *, dpi: float | None = None, tight: bool = False) -> Path:
    """Save a matplotlib figure to `path` atomically (format from the suffix: .png, .pdf, .svg), then
    close that figure in pyplot if pyplot holds it (no other figure is touched). Returns `path`.

    >>> save_figure(fig, "out/logit_lens.png", dpi=120)
    """
    fmt = figure_format(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None)
    release_figure(figure)
    return Path(path)


def release_figure(figure: Any) -> None:
    """Drop pyplot's reference to `figure` (a figure built without pyplot has none: nothing to do)."""
    if getattr(figure.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt  # only reached when pyplot made the figure, so already imported

        plt.close(figure)


# result.json's schema; readers (interp view) refuse versions newer than they know
RESULT_SCHEMA, RESULT_VERSION = "interp-toolkit/result", 1

_PACKAGES = ("interp-toolkit", "torch", "transformers", "numpy", "safetensors", "datasets")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Python and the packages a result depends on (absent ones are left out)."""
    found = {"python": platform.python_version()}
    for name in (*_PACKAGES, *extra):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same folder and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` via a temporary file in the same folder and a rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write `obj` as indented JSON (tensors and arrays as lists, paths as strings), atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def check_out_dir(out: str | Path, force: bool, resume: bool = False) -> Path:
    """Check an output folder before any work starts: not a file, not a non-empty folder unless
    `force` (or `resume`), and its parent writable with some free space."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InterpError(f"--out {out} is a file; name a folder")
    if out.is_dir() and any(out.iterdir()) and not (force or resume):
        raise InterpError(
            f"--out {out} exists and is not empty; pass --force to replace it, or name a new folder"
        )
    parent = next((p for p in (out.absolute(), *out.absolute().parents) if p.exists()), Path("/"))
    if not parent.is_dir():
        raise InterpError(f"--out {out}: {parent} is a file, so no folder can be made there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InterpError(f"--out {out}: {parent} is not writable; name a folder you can write to")
    free = shutil.disk_usage(parent).free
    if free < MIN_FREE_BYTES:
        raise InterpError(
            f"--out {out}: only {free // 1024**2} MiB free on the disk holding {parent}; free some space "
            "or write elsewhere"
        )
    return out


MIN_FREE_BYTES = 16 * 1024**2  # refuse to start a run that could not even write its results

_OLD, _TMP = "old", "tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path) -> list[tuple[Path, str]]:
    """Hidden `.{name}.{pid}.*.tmp|old` siblings of `out` left by runs that died (their pid is gone)."""
    found = []
    for entry in out.parent.glob(f".{glob_escape(out.name)}.*"):
        parts = entry.name[len(out.name) + 2 :].split(".")
        dead = len(parts) >= 3 and parts[0].isdigit() and not _pid_alive(int(parts[0]))
        if dead and parts[-1] in (_OLD, _TMP):
            found.append((entry, parts[-1]))
    return found


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def clean_leftovers(out: str | Path) -> None:
    """Remove temporary folders of killed runs next to `out`; if a kill came between moving the old
    `out` aside and moving the new one in, put the old one back first (nothing is lost)."""
    out = Path(out)
    if not out.parent.is_dir():
        return
    for entry, kind in _leftovers(out):
        if kind == _OLD and not out.exists() and (entry / out.name).exists():
            os.replace(entry / out.name, out)
            log.warning("restored %s, moved aside by a run that was killed before it finished", out)
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted run", entry)


@contextlib.contextmanager
def atomic_dir(out: str | Path, force: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and move it to `out` only if the block succeeds.

    >>> with atomic_dir("report") as tmp:
    ...     (tmp / "result.json").write_text("{}")
    """
    out = check_out_dir(out, force).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}.", suffix=f".{_TMP}"))
    share(tmp)  # mkdtemp makes 0700 folders
    try:
        yield tmp
        share_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out)


def replace_dir(new: Path, out: Path) -> None:
    """Move folder `new` to `out`, moving an existing `out` aside first and deleting it only after:
    a kill at any point leaves either the old folder, or the new one, never a half-deleted one
    (`clean_leftovers` repairs the moment in between on the next run)."""
    aside = None
    if out.exists():
        aside = Path(
            tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}.", suffix=f".{_OLD}")
        )
        os.replace(out, aside / out.name)  # rename is atomic; the old folder stays whole
    os.replace(new, out)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def write_result(
    folder: str | Path,
    *,
    command: str,
    inputs: dict,
    config: dict,
    seed: int | None,
    metrics: dict,
    **extra: Any,
) -> dict:
    """Write `folder/result.json` with the fields every command records; returns the payload."""
    payload = {
        "schema": RESULT_SCHEMA,
        "version": RESULT_VERSION,
        "command": command,
        "inputs": inputs,
        "config": config,
        "seed": seed,
        "versions": package_versions(),
        "metrics": metrics,
        **extra,
    }
    atomic_write_json(Path(folder) / "result.json", payload)
    return payload
