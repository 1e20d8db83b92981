"""A result folder (or a result object) read into the views the viewer draws, as one JSON-ready dict.

    >>> bundle = load_folder("demo-report")
    >>> [v["kind"] for v in bundle["views"]]
    ['summary', 'graph', 'features', 'heatmap', 'heatmap', 'attention']

What a folder may hold, and the view each file becomes:

| file | written by | view |
|---|---|---|
| `result.json` | every command | summary: command, inputs, metrics, tables, figures; `results` arrays become heatmaps |
| `circuit.json` | `interp circuit`, demo | graph (layer rows, scored edges) |
| `graph.json` | `interp attribute` | graph (layer rows x prompt positions) |
| `eval.json` (here or in `sae/`) | `interp sae train/eval`, demo | features: list, contexts, histogram, logits |
| `attention.json` | demo, `interp circuit` | attention patterns per head |
| `*.json` labelled arrays | demo patching | heatmap |

Files are only read: JSON through `json`, nothing executed. A folder with none of these, or whose
files carry a schema version newer than this viewer reads, is refused with one line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from interp.errors import InterpError
from interp.io import RESULT_SCHEMA, RESULT_VERSION
from interp.names import HookPoint
from interp.view.graphs import attribution_view, circuit_view, is_attribution_graph
from interp.view.record import ATTENTION_SCHEMA, ATTENTION_VERSION
from interp.view.tokens import display_tokens

BUNDLE_SCHEMA, BUNDLE_VERSION = "interp-toolkit/view", 1
# the newest version of each file schema this viewer reads
READABLE = {
    RESULT_SCHEMA: RESULT_VERSION,
    "interp-toolkit/circuit": 1,
    ATTENTION_SCHEMA: ATTENTION_VERSION,
    "interp-toolkit/attribution": 1,  # graph.json's metadata.schema_version
}
FIGURE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")
MAX_JSON_BYTES = 64 * 2**20


class ViewError(InterpError):
    """A folder or object the viewer cannot show."""


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ViewError(f"{path} is over {MAX_JSON_BYTES >> 20} MB; the viewer reads smaller result files")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ViewError(f"{path} is not valid JSON ({exc}); rewrite it by re-running the command") from exc
    _check_version(data, path)
    return data


def _check_version(data: Any, path: Path) -> None:
    if not isinstance(data, dict):
        return
    schema, version = data.get("schema"), data.get("version")
    meta = data.get("metadata")
    if (
        not isinstance(version, int)
        and isinstance(meta, dict)
        and isinstance(meta.get("schema_version"), int)
    ):
        schema, version = "interp-toolkit/attribution", meta["schema_version"]  # attribution graph.json
    if not isinstance(version, int):
        version = None
    newest = READABLE.get(schema, 1 if schema is None else None)
    if version is None or newest is None:
        return
    if version > newest:
        raise ViewError(
            f"{path} has schema version {version} ({schema or 'unnamed'}), newer than this viewer reads "
            f"(up to {newest}); upgrade interp-toolkit (pip install -U interp-toolkit)"
        )


# -- pieces ------------------------------------------------------------------------------------------
def _scalar_rows(data: Any, prefix: str = "") -> list[list[Any]]:
    """Nested metrics flattened to [key, value] rows of scalars and short lists."""
    rows: list[list[Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            rows += _scalar_rows(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and len(data) <= 16 and all(not isinstance(v, dict | list) for v in data):
        rows.append([prefix, ", ".join(_fmt(v) for v in data)])
    elif not isinstance(data, list):
        rows.append([prefix, _fmt(data)])
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-level lists of flat dicts in result.json (align's per-location table, ...) as tables."""
    tables = []
    for key, value in result.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            if all(not isinstance(row.get(c), dict | list) for row in value for c in columns):
                rows = [[_fmt(row.get(c, "")) for c in columns] for row in value]
                tables.append({"title": key, "columns": columns, "rows": rows})
    return tables


def is_labelled_array(data: Any) -> bool:
    return isinstance(data, dict) and {"dims", "values"} <= set(data) and isinstance(data["dims"], list)


def heatmap_view(data: dict[str, Any], title: str) -> dict[str, Any] | None:
    """A 1-d or 2-d labelled array (`circuits.results.LabelledArray.to_dict`) as a heatmap view."""
    dims, values = list(data["dims"]), data["values"]
    if len(dims) == 1:
        dims, values = ["", *dims], [values]
    if len(dims) != 2:
        return None
    labels = data.get("labels", {})
    n_rows, n_cols = len(values), len(values[0]) if values else 0
    centre = None if all(v is None or v >= 0 for row in values for v in row) else 0.0
    return {
        "kind": "heatmap",
        "title": title,
        "name": data.get("name", ""),
        "ylabel": dims[0],
        "xlabel": dims[1],
        "yticks": list(labels.get(dims[0], [str(i) for i in range(n_rows)])),
        "xticks": list(labels.get(dims[1], [str(i) for i in range(n_cols)])),
        "values": values,
        "centre": centre,
    }


def _site(hook: str | None) -> str | None:
    """The circuit-node prefix of an SAE's hook: `blocks.1.hook_resid_post` -> `L1.resid`."""
    point = HookPoint.try_parse(hook)
    return f"L{point.layer}.{point.feature_site}" if point is not None and point.feature_site else None


def _sae_hook(folder: Path) -> str | None:
    """The hook an SAE folder (`cfg.json`, SAELens layout or ours) reads, if it says."""
    try:
        cfg = json.loads((folder / "cfg.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    return cfg.get("hook_in") or cfg.get("hook_name") or meta.get("hook_name")


def _sae_evaluation(root: Path, sae_dir: str) -> tuple[dict[str, Any], str | None] | None:
    """eval.json of an SAE a result names (beside its weights or in the `sae train` folder above)."""
    folder = Path(sae_dir) if Path(sae_dir).is_absolute() else root / sae_dir
    if not folder.exists():
        folder = Path(sae_dir)
    for candidate in (folder / "eval.json", folder.parent / "eval.json"):
        if candidate.is_file():
            return _read_json(candidate), _sae_hook(folder)
    return None


def features_view(data: dict[str, Any], title: str, hook: str | None = None) -> dict[str, Any]:
    """`eval.json` (see `saes.report`) as a features view; contexts get display tokens. `site` (from
    the SAE's hook, e.g. `L1.resid`) lets a circuit's feature node `L1.resid.F23` find its card."""
    features = []
    for card in data.get("features", []):
        contexts = []
        for ctx in card.get("contexts", []):
            tokens = ctx.get("tokens") or []
            if "pieces" in ctx:
                tokens = display_tokens(ctx["pieces"], data.get("token_scheme"))
            contexts.append(
                {"tokens": tokens, "acts": ctx.get("acts", []), "position": ctx.get("position", 0)}
            )
        features.append(
            {
                "index": card["index"],
                "density": card.get("density"),
                "mean_activation": card.get("mean_activation"),
                "max_activation": card.get("max_activation"),
                "contexts": contexts,
                "histogram": card.get("histogram"),
                "top_logits": card.get("top_logits", []),
                "bottom_logits": card.get("bottom_logits", []),
            }
        )
    return {
        "kind": "features",
        "title": title,
        "hook": hook,
        "site": _site(hook),
        "metrics": data.get("metrics", {}),
        "features": features,
    }


def attention_view(data: dict[str, Any], title: str = "Attention patterns") -> dict[str, Any]:
    patterns = data["patterns"]
    return {
        "kind": "attention",
        "title": title,
        "tokens": data["tokens"],
        "layers": len(patterns),
        "heads": len(patterns[0]) if patterns else 0,
        "patterns": patterns,
    }


# -- folders -----------------------------------------------------------------------------------------
_KNOWN = ("result.json", "circuit.json", "graph.json", "eval.json", "sae/eval.json", "attention.json")


def load_folder(folder: str | Path) -> dict[str, Any]:
    """Read a result folder into a bundle: `{"schema", "version", "title", "command", "views": [...]}`.

    Raises `ViewError` for a folder that is missing, holds no result, or is from a newer schema.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ViewError(f"{folder} is not a folder; pass a result folder written by an interp command")
    if not any((root / name).is_file() for name in _KNOWN):
        raise ViewError(
            f"{folder} is not a result folder: it has no result.json, circuit.json, graph.json or eval.json "
            "(pass a folder written by interp demo, sae train, patch, trace, circuit, align, concepts or attribute)"
        )
    result = _read_json(root / "result.json") if (root / "result.json").is_file() else {}
    if not isinstance(result, dict):
        raise ViewError(f"{root / 'result.json'} is not a JSON object; it was not written by interp-toolkit")
    command = result.get("command")
    views: list[dict[str, Any]] = []
    used = {"result.json"}

    for name, title in (("graph.json", "Attribution graph"), ("circuit.json", "Circuit")):
        if (root / name).is_file():
            data = _read_json(root / name)
            views.append(
                attribution_view(data, title) if is_attribution_graph(data) else circuit_view(data, title)
            )
            used.add(name)
    for name in ("eval.json", "sae/eval.json"):
        if (root / name).is_file():
            evaluation = _read_json(root / name)
            hook = evaluation.get("hook_in") or _sae_hook((root / name).parent / "sae")
            views.append(features_view(evaluation, "SAE features", hook))
            used.add(name)
    for sae_dir in (result.get("inputs") or {}).get("saes") or []:  # feature circuits: the SAEs they read
        found = _sae_evaluation(root, str(sae_dir))
        if found is not None:
            views.append(features_view(found[0], f"SAE features, {found[1] or sae_dir}", found[1]))
    for key, array in (result.get("results") or {}).items():
        if is_labelled_array(array) and (view := heatmap_view(array, key)):
            views.append(view)
    for path in sorted(root.glob("*.json")):
        if path.name in used or path.name in ("attention.json", "scores.json"):
            continue
        data = _read_json(path)
        if is_labelled_array(data) and (view := heatmap_view(data, path.stem)):
            views.append(view)
    if (root / "attention.json").is_file():
        views.append(attention_view(_read_json(root / "attention.json")))

    figures = [str(f) for f in result.get("figures", []) if isinstance(f, str)]
    figures += [
        p.name for p in sorted(root.iterdir()) if p.suffix in FIGURE_SUFFIXES and p.name not in figures
    ]
    summary = {
        "kind": "summary",
        "title": "Summary",
        "rows": _scalar_rows({"inputs": result.get("inputs", {}), "metrics": result.get("metrics", {})}),
        "tables": _tables(result),
        "figures": [f for f in figures if Path(f).suffix in FIGURE_SUFFIXES and (root / f).is_file()],
        "seed": result.get("seed"),
    }
    views.insert(0, summary)
    for i, view in enumerate(views):
        view["id"] = f"v{i}"
    return {
        "schema": BUNDLE_SCHEMA,
        "version": BUNDLE_VERSION,
        "title": f"{command or 'result'}: {root.resolve().name}",
        "command": command,
        "views": views,
    }


# -- objects -----------------------------------------------------------------------------------------
def bundle_of(result: Any, title: str | None = None) -> dict[str, Any]:
    """A bundle from a folder path or an in-memory result: anything with `to_dict()` returning a
    circuit, attribution graph, labelled array or SAE evaluation dict, or such a dict itself."""
    if isinstance(result, str | Path):
        return load_folder(result)
    data = result.to_dict() if hasattr(result, "to_dict") else result
    if not isinstance(data, dict):
        raise ViewError(
            f"cannot show a {type(result).__name__}: pass a result folder, a Circuit, a LabelledArray, "
            "an SAE EvalResult, or their to_dict()"
        )
    _check_version(data, Path(f"<{type(result).__name__}>"))
    name = title or type(result).__name__
    if is_attribution_graph(data):
        view = attribution_view(data, name)
    elif "nodes" in data and "edges" in data:
        view = circuit_view(data, name)
    elif is_labelled_array(data):
        view = heatmap_view(data, data.get("name") or name)
    elif "features" in data and "metrics" in data:
        view = features_view(data, name)
    elif "patterns" in data and "tokens" in data:
        view = attention_view(data, name)
    else:
        view = None
    if view is None:
        raise ViewError(
            f"cannot show this {type(result).__name__}: it is not a circuit, attribution graph, "
            "labelled array (1-d or 2-d), SAE evaluation or attention record"
        )
    view["id"] = "v0"
    return {
        "schema": BUNDLE_SCHEMA,
        "version": BUNDLE_VERSION,
        "title": name,
        "command": None,
        "views": [view],
    }
