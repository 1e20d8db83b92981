"""Labelled arrays: a values tensor with named axes and tick labels, saved as JSON and drawn as heatmaps.

Every sweep in `circuits` (patching, tracing, mediation, attribution, ...) returns a `LabelledArray`:
`values` is a float tensor, `dims` names its axes (`layer`, `position`, `head`, ...), `labels` gives
tick labels for the axes that have them (token strings, named positions, `L1H3`), `name` says what the
numbers measure, and `meta` holds the configuration and baselines that produced them (JSON values only).

    >>> result = LabelledArray(torch.zeros(2, 3), ("layer", "position"), {"position": ("<bos>", "Mary", "to")})
    >>> LabelledArray.from_json(result.to_json()).dims
    ('layer', 'position')
    >>> result.plot("resid.png")  # PNG, PDF or SVG by suffix

Files are written atomically through `interp.io` (a temporary file in the same folder, then a rename),
so a crash never leaves half a result. Heatmaps are `interp.figures.heatmap_figure`; matplotlib is
imported only inside `plot`, and figures are built without pyplot, so importing this module (or
`circuits`) changes no global state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interp.errors import InterpError
from interp.figures import heatmap_figure, rotated
from interp.io import atomic_write_text, figure_format, save_figure


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
        if path is not None:
            figure_format(path)  # a bad suffix fails before anything is drawn
        figure = _draw(self, title=title, cmap=cmap, centre=centre, annotate=annotate)
        if path is not None:
            save_figure(figure, path, dpi=150, tight=True)
        return figure


# -- drawing (matplotlib is imported here only, and pyplot never: no global state changes) -----------
def _limits(values: torch.Tensor, centre: float | None) -> tuple[float | None, float | None]:
    finite = values[torch.isfinite(values)]
    if centre is None or finite.numel() == 0:
        return None, None
    span = float((finite - centre).abs().max()) or 1.0
    return centre - span, centre + span


def _draw(
    array: LabelledArray, *, title: str | None, cmap: str | None, centre: float | None, annotate: bool | None
) -> Any:
    cmap = cmap or ("RdBu" if centre is not None else "viridis")
    title = array.name if title is None else title
    values = array.values
    if values.ndim == 1:
        return _bars(array, title)
    if values.ndim not in (2, 3):
        raise InterpError(f"plot() draws 1-d, 2-d or 3-d arrays; this one is {values.ndim}-d ({array.dims})")
    vmin, vmax = _limits(values, centre)
    rows, cols = array.dims[-2], array.dims[-1]
    return heatmap_figure(
        [values.numpy()] if values.ndim == 2 else list(values.numpy()),
        array.ticks(rows),
        array.ticks(cols),
        title=title,
        panel_titles=[f"{array.dims[0]} {t}" for t in array.ticks(array.dims[0])] if values.ndim == 3 else (),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        annotate=annotate,
        xlabel=cols,
        ylabel=rows,
        colorbar_label=array.name or None,
    )


def _bars(array: LabelledArray, title: str) -> Any:
    from matplotlib.figure import Figure

    values, dim = array.values, array.dims[0]
    figure = Figure(figsize=(max(4.0, 0.35 * values.shape[0] + 1.5), 3.2))
    ax = figure.add_subplot()
    ax.bar(range(values.shape[0]), values.numpy(), color="#4472c4")
    ax.set_xticks(range(values.shape[0]), array.ticks(dim), rotation=90 if rotated(array.ticks(dim)) else 0)
    ax.set_xlabel(dim)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_title(title, fontsize=9)
    return figure
