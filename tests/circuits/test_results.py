"""Labelled result arrays: JSON round trip, views, tables and figures (PNG/PDF/SVG)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
import torch

import circuits
from circuits.results import LabelledArray, position_labels
from interp.errors import InterpError


@pytest.fixture
def array() -> LabelledArray:
    values = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 10
    values[1, 2] = float("nan")
    return LabelledArray(
        values,
        ("layer", "position"),
        {"position": ("0 <bos>", "1 Mary", "2 and", "3 John")},
        name="normalised metric",
        meta={"hook": "resid_pre", "metric_clean": 2.5},
    )


def test_json_round_trip_keeps_values_labels_meta_and_nan(array, tmp_path):
    text = array.to_json()
    json.loads(text)  # strict JSON: NaN is written as null
    back = LabelledArray.from_json(text)
    assert back.dims == array.dims and back.labels == array.labels and back.meta == array.meta
    assert back.name == array.name
    torch.testing.assert_close(back.values, array.values, equal_nan=True)
    path = array.save(tmp_path / "r.json")
    torch.testing.assert_close(LabelledArray.load(path).values, array.values, equal_nan=True)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_views(array):
    assert array.ticks("layer") == ("0", "1", "2")
    row = array.sel(layer=2)
    assert row.dims == ("position",) and row.values.tolist() == pytest.approx([0.8, 0.9, 1.0, 1.1])
    assert array.sel(position="1 Mary").values.tolist() == pytest.approx([0.1, 0.5, 0.9])
    assert array.argmax() == {"layer": "2", "position": "3 John"}  # NaN skipped
    top = array.top(2)
    assert [v for _, v in top] == pytest.approx([1.1, 1.0])
    flipped = array.transpose("position", "layer")
    assert flipped.shape == (4, 3) and flipped.sel(position="3 John").values[2] == pytest.approx(1.1)
    table = array.table(digits=1)
    assert table.splitlines()[0] == "| layer | 0 <bos> | 1 Mary | 2 and | 3 John |"
    assert "| 2 | 0.8 | 0.9 | 1.0 | 1.1 |" in table


def test_bad_arrays_are_refused(array):
    with pytest.raises(InterpError, match="dims"):
        LabelledArray(torch.zeros(2, 2), ("layer",))
    with pytest.raises(InterpError, match="labels"):
        LabelledArray(torch.zeros(2), ("layer",), {"layer": ("a",)})
    with pytest.raises(InterpError, match="not a label"):
        array.sel(position="Bob")
    with pytest.raises(InterpError, match="out of range"):
        array.sel(layer=7)


@pytest.mark.parametrize("suffix", ["png", "pdf", "svg"])
def test_plot_writes_each_format(array, tmp_path, suffix):
    path = tmp_path / f"heatmap.{suffix}"
    array.plot(path, title="resid_pre")
    assert path.stat().st_size > 500
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    head = path.read_bytes()[:8]
    assert {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}[suffix] in head


def test_plot_1d_3d_and_bad_suffix(tmp_path):
    LabelledArray(torch.randn(5), ("layer",)).plot(tmp_path / "bars.png")
    LabelledArray(torch.randn(2, 3, 4), ("effect", "layer", "head")).plot(tmp_path / "grid.svg", centre=None)
    assert (tmp_path / "bars.png").exists() and (tmp_path / "grid.svg").exists()
    with pytest.raises(InterpError, match="format"):
        LabelledArray(torch.randn(5), ("layer",)).plot(tmp_path / "bars.jpg")


def test_position_labels():
    assert position_labels(["<bos>", "Mary", "to"], {"IO": 1, "END": -1}) == (
        "0 <bos>",
        "1 Mary [IO]",
        "2 to [END]",
    )


def test_matplotlib_is_imported_lazily():
    # module-level imports of circuits.results / patching / editing / commands never pull in matplotlib
    # (checked statically: a fresh interpreter importing torch costs seconds on a busy machine)
    root = Path(circuits.__file__).parent
    files = [
        root / "results.py",
        root / "cli.py",
        *(root / "patching").glob("*.py"),
        *(root / "editing").glob("*.py"),
        root / "commands" / "patch.py",
        root / "commands" / "trace.py",
    ]
    for path in files:
        tree = ast.parse(path.read_text())
        for node in tree.body:  # top-level statements only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "matplotlib" for n in names), path


def test_nan_survives_to_dict():
    d = LabelledArray(torch.tensor([math.nan, 1.0]), ("layer",)).to_dict()
    assert d["values"] == [None, 1.0]
