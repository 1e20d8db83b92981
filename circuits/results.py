"""Labelled arrays: a values tensor with named axes and tick labels, saved as JSON and drawn as heatmaps.

Every sweep in `circuits` (patching, tracing, mediation, attribution, ...) returns a `LabelledArray`:
`values` is a float tensor, `dims` names its axes (`layer`, `position`, `head`, ...), `labels` gives
tick labels for the axes that have them (token strings, named positions, `L1H3`), `name` says what the
numbers measure, and `meta` holds the configuration and baselines that produced them (JSON values only).

    >>> result = LabelledArray(torch.zeros(2, 3), ("layer", "position"), {"position": ("<bos>", "Mary", "to")})
    >>> LabelledArray.from_json(result.to_json()).dims
    ('layer', 'position')
    >>> result.plot("resid.png")  # PNG, PDF or SVG by suffix

Files are written atomically (a temporary file in the same folder, then a rename), so a crash never
leaves half a result. Matplotlib is imported only inside `plot`, and figures are built without pyplot,
so importing this module (or `circuits`) changes no global state.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interp.errors import InterpError
from interp.io import atomic_write_text, share

FIGURE_FORMATS = ("png", "pdf", "svg")


# -- atomic files ------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on error deleted
    (for writers that want a path, like `Figure.savefig`; text goes through `interp.io`).

    Example:
        >>> with atomic_path("out/heatmap.png") as tmp:
        ...     figure.savefig(tmp, format="png")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        share(tmp)  # mkstemp makes private 0600 files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- labels ------------------------------------------------------------------------------------------
def position_labels(tokens: Sequence[str], named: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """Tick labels for positions: `"3 Mary"`, with the named position appended (`"3 Mary [IO]"`).

    Example:
        >>> position_labels(["<bos>", "When", "Mary"], {"IO": 2})
        ('0 <bos>', '1 When', '2 Mary [IO]')
    """
    names: dict[int, list[str]] = {}
    for name, pos in (named or {}).items():
        names.setdefault(int(pos) % max(1, len(tokens)), []).append(name)
    return tuple(
        f"{i} {tok}" + (f" [{','.join(names[i])}]" if i in names else "") for i, tok in enumerate(tokens)
    )


def _json_number(x: float) -> float | None:
    return None if math.isnan(x) else x


def _nested(values: torch.Tensor) -> Any:
    if values.ndim == 0:
        return _json_number(float(values))
    return [_nested(v) for v in values]


def _from_nested(data: Any) -> torch.Tensor:
    def clean(x: Any) -> Any:
        if isinstance(x, list):
            return [clean(v) for v in x]
        return float("nan") if x is None else float(x)

    return torch.tensor(clean(data), dtype=torch.float32)


# -- the array ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LabelledArray:
    """A float tensor with named axes, optional tick labels per axis, a name and JSON metadata.

    Example:
        >>> r = LabelledArray(torch.rand(3, 4), ("layer", "head"), name="normalised logit diff")
        >>> r.argmax()  # {'layer': '2', 'head': '1'}
        >>> r.sel(layer=2).dims
        ('head',)
    """

    values: torch.Tensor
    """The numbers; detached, float32, on CPU."""
    dims: tuple[str, ...]
    """One name per axis of `values`."""
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Tick labels for some axes (axis name -> one label per index); other axes are labelled 0..n-1."""
    name: str = ""
    """What the values measure (colour-bar label), e.g. `"normalised logit diff"`."""
    meta: dict[str, Any] = field(default_factory=dict)
    """JSON-serialisable configuration and baselines (hook, mode, clean/corrupted metric, ...)."""

    def __post_init__(self) -> None:
        values = torch.as_tensor(self.values).detach().to("cpu", torch.float32)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "dims", tuple(self.dims))
        if len(self.dims) != values.ndim:
            raise InterpError(
                f"LabelledArray: {len(self.dims)} dims {self.dims} for a {values.ndim}-d tensor"
            )
        if len(set(self.dims)) != len(self.dims):
            raise InterpError(f"LabelledArray: repeated dim names {self.dims}")
        labels = {k: tuple(str(v) for v in vs) for k, vs in self.labels.items()}
        for dim, ticks in labels.items():
            if dim not in self.dims:
                raise InterpError(f"LabelledArray: labels for {dim!r}, which is not one of {self.dims}")
            size = values.shape[self.dims.index(dim)]
            if len(ticks) != size:
                raise InterpError(f"LabelledArray: {len(ticks)} labels for dim {dim!r} of size {size}")
        object.__setattr__(self, "labels", labels)

    def __repr__(self) -> str:
        shape = ", ".join(f"{d}={n}" for d, n in zip(self.dims, self.values.shape, strict=True))
        return f"LabelledArray({self.name or 'values'}: {shape})"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def ticks(self, dim: str) -> tuple[str, ...]:
        """Tick labels of `dim` (its labels, or "0".."n-1")."""
        axis = self._axis(dim)
        return self.labels.get(dim) or tuple(str(i) for i in range(self.values.shape[axis]))

    def _axis(self, dim: str) -> int:
        if dim not in self.dims:
            raise InterpError(f"no dim {dim!r}; dims are {self.dims}")
        return self.dims.index(dim)

    def _index(self, dim: str, key: int | str) -> int:
        ticks = self.ticks(dim)
        if isinstance(key, str):
            if key not in ticks:
                raise InterpError(f"{key!r} is not a label of dim {dim!r}; labels: {', '.join(ticks)}")
            return ticks.index(key)
        if not -len(ticks) <= key < len(ticks):
            raise InterpError(f"index {key} out of range for dim {dim!r} of size {len(ticks)}")
        return key % len(ticks)

    # -- views ---------------------------------------------------------------------------------------
    def sel(self, **where: int | str) -> LabelledArray:
        """Select one index (an int or a tick label) along the named dims, dropping those dims."""
        values, dims = self.values, list(self.dims)
        for dim, key in where.items():
            axis = dims.index(dim) if dim in dims else self._axis(dim)
            values = values.select(axis, self._index(dim, key))
            dims.pop(axis)
        labels = {d: t for d, t in self.labels.items() if d in dims}
        return LabelledArray(values, tuple(dims), labels, self.name, dict(self.meta))

    def transpose(self, *dims: str) -> LabelledArray:
        """The same array with its axes in the order `dims` (a permutation of `self.dims`).

        Example:
            >>> res.transpose("position", "layer").plot("trace.png")  # positions as rows, as in ROME
        """
        if sorted(dims) != sorted(self.dims):
            raise InterpError(f"transpose needs a permutation of {self.dims}, got {dims}")
        order = [self.dims.index(d) for d in dims]
        return LabelledArray(
            self.values.permute(order), tuple(dims), dict(self.labels), self.name, dict(self.meta)
        )

    def argmax(self, absolute: bool = False) -> dict[str, str]:
        """Tick labels of the largest value (of the largest |value| with `absolute`)."""
        return self.top(1, absolute=absolute)[0][0]

    def top(self, k: int = 5, absolute: bool = False) -> list[tuple[dict[str, str], float]]:
        """The `k` largest entries (NaN skipped) as (dim -> tick label, value), largest first."""
        flat = self.values.flatten()
        score = flat.abs() if absolute else flat.clone()
        score[torch.isnan(score)] = -math.inf
        order = score.argsort(descending=True)[: max(0, k)]
        out = []
        for index in order.tolist():
            coords = torch.unravel_index(torch.tensor(index), self.values.shape)
            where = {d: self.ticks(d)[int(c)] for d, c in zip(self.dims, coords, strict=True)}
            out.append((where, float(flat[index])))
        return out

    def table(self, digits: int = 3) -> str:
        """A Markdown table (rows: first dim, columns: second; a 1-d array is one row)."""
        values = self.values[None] if self.values.ndim == 1 else self.values
        if values.ndim != 2:
            raise InterpError(f"table() needs a 1-d or 2-d array, this one is {self.values.ndim}-d")
        rows = ("",) if self.values.ndim == 1 else self.ticks(self.dims[0])
        cols = self.ticks(self.dims[-1])
        corner = self.dims[0] if self.values.ndim == 2 else ""
        lines = [f"| {corner} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for label, row in zip(rows, values, strict=True):
            cells = " | ".join(f"{float(v):.{digits}f}" for v in row)
            lines.append(f"| {label} | {cells} |")
        return "\n".join(lines)

    # -- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN becomes null)."""
        return {
            "name": self.name,
            "dims": list(self.dims),
            "shape": list(self.values.shape),
            "labels": {k: list(v) for k, v in self.labels.items()},
            "values": _nested(self.values),
            "meta": self.meta,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> LabelledArray:
        values = _from_nested(data["values"]).reshape(data.get("shape", ()))
        labels = {k: tuple(v) for k, v in data.get("labels", {}).items()}
        return LabelledArray(
            values, tuple(data["dims"]), labels, data.get("name", ""), dict(data.get("meta", {}))
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @staticmethod
    def from_json(text: str) -> LabelledArray:
        return LabelledArray.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write `to_json()` to `path` atomically."""
        atomic_write_text(path, self.to_json(indent=1))
        return Path(path)

    @staticmethod
    def load(path: str | Path) -> LabelledArray:
        return LabelledArray.from_json(Path(path).read_text(encoding="utf-8"))

    # -- figures -------------------------------------------------------------------------------------
    def plot(
        self,
        path: str | Path | None = None,
        *,
        title: str | None = None,
        cmap: str | None = None,
        centre: float | None = 0.0,
        annotate: bool | None = None,
    ) -> Any:
        """Draw the array: a heatmap (2-d), bars (1-d), or one heatmap per index of the first dim (3-d).

        Rows are the first dim, columns the last. Colours are centred on `centre` (None: not centred)
        with a diverging map; `annotate` writes values into cells (default: when at most 16 x 16).
        With `path` the figure is written there atomically (format from the suffix: .png, .pdf,
        .svg). Returns the matplotlib `Figure`.
        """
        figure = _draw(self, title=title, cmap=cmap, centre=centre, annotate=annotate)
        if path is not None:
            save_figure(figure, path)
        return figure


def save_figure(figure: Any, path: str | Path) -> Path:
    """Save a matplotlib figure atomically; the format comes from the suffix (png, pdf or svg)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise InterpError(
            f"figure format {path.suffix or '(none)'!r} not supported; use one of .png, .pdf, .svg"
        )
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, bbox_inches="tight", dpi=150)
    return path


# -- drawing (matplotlib is imported here only, and pyplot never: no global state changes) -----------
def _limits(values: torch.Tensor, centre: float | None) -> tuple[float | None, float | None]:
    finite = values[torch.isfinite(values)]
    if centre is None or finite.numel() == 0:
        return None, None
    span = float((finite - centre).abs().max()) or 1.0
    return centre - span, centre + span


def _rotated(array: LabelledArray, dim: str) -> bool:
    ticks = array.ticks(dim)
    return len(ticks) > 6 or max(len(t) for t in ticks) > 4


def _heatmap(
    ax: Any, array: LabelledArray, values: torch.Tensor, cmap: str, centre: float | None, annotate: bool
) -> Any:
    rows, cols = array.dims[-2], array.dims[-1]
    vmin, vmax = _limits(array.values, centre)
    image = ax.imshow(
        values.cpu().numpy(), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest"
    )
    ax.set_xticks(range(values.shape[1]), array.ticks(cols), rotation=90 if _rotated(array, cols) else 0)
    ax.set_yticks(range(values.shape[0]), array.ticks(rows))
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    if annotate:
        for (i, j), v in zip(
            torch.cartesian_prod(torch.arange(values.shape[0]), torch.arange(values.shape[1])).tolist(),
            values.flatten().tolist(),
            strict=True,
        ):
            r, g, b, _ = image.cmap(image.norm(v))
            colour = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"  # readable on dark cells
            ax.text(
                j, i, "" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=6, color=colour
            )
    return image


def _draw(
    array: LabelledArray, *, title: str | None, cmap: str | None, centre: float | None, annotate: bool | None
) -> Any:
    from matplotlib.figure import Figure

    cmap = cmap or ("RdBu" if centre is not None else "viridis")
    title = array.name if title is None else title
    values = array.values
    if values.ndim == 1:
        figure = Figure(figsize=(max(4.0, 0.35 * values.shape[0] + 1.5), 3.2))
        ax = figure.add_subplot()
        ax.bar(range(values.shape[0]), values.cpu().numpy(), color="#4472c4")
        ax.set_xticks(
            range(values.shape[0]),
            array.ticks(array.dims[0]),
            rotation=90 if _rotated(array, array.dims[0]) else 0,
        )
        ax.set_xlabel(array.dims[0])
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_title(title, fontsize=9)
        return figure
    if values.ndim not in (2, 3):
        raise InterpError(f"plot() draws 1-d, 2-d or 3-d arrays; this one is {values.ndim}-d ({array.dims})")
    panels = [values] if values.ndim == 2 else list(values)
    n_rows, n_cols = values.shape[-2], values.shape[-1]
    annotate = annotate if annotate is not None else (n_rows <= 16 and n_cols <= 16)
    col_text = max(len(t) for t in array.ticks(array.dims[-1]))
    row_text = max(len(t) for t in array.ticks(array.dims[-2]))
    width = max(3.5, 0.5 * n_cols + 2.0 + 0.07 * row_text)
    height = max(2.2, 0.38 * n_rows + 1.4 + (0.075 * col_text if _rotated(array, array.dims[-1]) else 0.2))
    figure = Figure(figsize=(width * len(panels), height), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for k, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        image = _heatmap(ax, array, panel, cmap, centre, annotate)
        if values.ndim == 3:
            ax.set_title(f"{array.dims[0]} {array.ticks(array.dims[0])[k]}", fontsize=9)
    figure.colorbar(image, ax=list(axes), label=array.name or None, shrink=0.9)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure
