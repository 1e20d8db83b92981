"""Writing results so nothing is lost: atomic files and folders, and the provenance every run records.

Every command that writes a folder writes `result.json` (inputs, config, seed, package versions,
metrics) beside its figures, through `write_result`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from interp.errors import InterpError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def check_out_dir(out: str | Path, force: bool) -> Path:
    """Refuse to write into an existing non-empty folder unless `force`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InterpError(f"--out {out} is a file; name a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InterpError(
            f"--out {out} exists and is not empty; pass --force to replace it, or name a new folder"
        )
    return out


@contextlib.contextmanager
def atomic_dir(out: str | Path, force: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and move it to `out` only if the block succeeds.

    >>> with atomic_dir("report") as tmp:
    ...     (tmp / "result.json").write_text("{}")
    """
    out = check_out_dir(out, force).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
