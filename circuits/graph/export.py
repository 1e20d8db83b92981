"""Writing circuits: DOT, GraphML (networkx), TikZ, JSON, and figures (SVG/PDF/PNG).

Figures come from graphviz's `dot` when it is on PATH (the DOT text rendered with `dot -T<fmt>`),
otherwise from networkx + matplotlib with the same layer layout (`circuits.graph.layout`), so
rendering works on a fresh machine with pip packages only. Every file is written atomically.

    >>> circuit.save("out/circuit.svg")          # format from the suffix
    >>> circuit.export("out", ["json", "dot", "graphml", "tikz", "svg"])
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from circuits.graph import layout
from interp.errors import InterpError
from interp.io import atomic_write_bytes, atomic_write_text, figure_bytes

if TYPE_CHECKING:
    import networkx as nx

    from circuits.graph.circuit import Circuit

logger = logging.getLogger(__name__)

TEXT_FORMATS = ("json", "dot", "graphml", "tikz")
FIGURE_FORMATS = ("svg", "pdf", "png")
FORMATS = TEXT_FORMATS + FIGURE_FORMATS
SUFFIX = {
    "json": "json",
    "dot": "dot",
    "graphml": "graphml",
    "tikz": "tex",
    "svg": "svg",
    "pdf": "pdf",
    "png": "png",
}
_ALIASES = {"tex": "tikz", "gv": "dot"}


def check_format(fmt: str) -> str:
    """The canonical name of export format `fmt`, or an `InterpError` listing the formats."""
    key = _ALIASES.get(fmt.lower().strip().lstrip("."), fmt.lower().strip().lstrip("."))
    if key not in FORMATS:
        raise InterpError(f"unknown circuit export format {fmt!r}; formats: {', '.join(FORMATS)}")
    return key


def _max_abs(circuit: Circuit) -> float:
    return max((abs(s) for s in circuit.edge_scores.values()), default=0.0)


def title(circuit: Circuit) -> str:
    """A figure title: the metadata's `title`, else method, model and task, with the circuit's size."""
    meta = circuit.metadata
    if meta.get("title"):
        return str(meta["title"])
    what = " ".join(str(meta[k]) for k in ("method",) if meta.get(k)) or "Circuit"
    where = " on ".join(str(meta[k]) for k in ("model", "task") if meta.get(k))
    return f"{what} circuit{f': {where}' if where else ''} ({len(circuit.nodes)} nodes, {len(circuit.edges)} edges)"


# -- networkx / GraphML -------------------------------------------------------------------------------
def to_networkx(circuit: Circuit) -> nx.DiGraph:
    """See `Circuit.to_networkx`. Attributes are strings/numbers only, so GraphML can hold them."""
    import networkx as nx

    graph = nx.DiGraph(**{k: v for k, v in circuit.metadata.items() if isinstance(v, str | int | float)})
    pos = layout.positions(circuit)
    for node in circuit.nodes:
        attrs = {
            "kind": node.kind,
            "label": layout.label(node).replace("\n", " "),
            "x": pos[node.name][0],
            "y": pos[node.name][1],
        }
        attrs.update({k: v for k, v in (("layer", node.layer), ("head", node.head)) if v is not None})
        if node in circuit.node_scores:
            attrs["score"] = circuit.node_scores[node]
        graph.add_node(node.name, **attrs)
    for edge in circuit.edges:
        u, v = edge.src.name, edge.dst.name
        score = circuit.edge_scores.get(edge)
        data = graph.get_edge_data(u, v)
        if data is None:
            graph.add_edge(u, v, qkv=edge.qkv or "", **({"score": score} if score is not None else {}))
            continue
        data["qkv"] = ",".join(filter(None, [data["qkv"], edge.qkv]))
        if score is not None and abs(score) > abs(data.get("score", 0.0)):
            data["score"] = score
    return graph


def to_graphml(circuit: Circuit) -> str:
    import networkx as nx

    buffer = io.BytesIO()
    nx.write_graphml(to_networkx(circuit), buffer)
    return buffer.getvalue().decode("utf-8")


# -- DOT ---------------------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(circuit: Circuit) -> str:
    """Graphviz DOT: bottom-to-top, one `rank=same` row per residual-stream depth, edges coloured by
    sign and sized by |score| (q/k/v channel as the edge label)."""
    lines = [
        "digraph circuit {",
        "  rankdir=BT; ranksep=0.6; nodesep=0.25;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [arrowsize=0.6, fontname="Helvetica", fontsize=9];',
        f"  labelloc=t; fontname=Helvetica; fontsize=13; label={_quote(title(circuit))};",
    ]
    for row in layout.rows(circuit):
        cells = []
        for node in row:
            text = _quote(layout.label(node)).replace("\n", "\\n")
            cells.append(f"{_quote(node.name)} [label={text}, fillcolor={_quote(layout.FILL[node.kind])}];")
        lines.append("  { rank=same; " + " ".join(cells) + " }")
    top = _max_abs(circuit)
    for edge in circuit.edges:
        score = circuit.edge_scores.get(edge)
        colour, width = layout.edge_style(score, top)
        attrs = [f"color={_quote(colour)}", f"penwidth={width:.2f}"]
        if edge.qkv:
            attrs.append(f"label={_quote(edge.qkv)}")
        if score is not None:
            attrs.append(f"tooltip={_quote(f'{edge.name}: {score:.4g}')}")
        lines.append(f"  {_quote(edge.src.name)} -> {_quote(edge.dst.name)} [{', '.join(attrs)}];")
    lines += _dot_legend(top)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_legend(top: float) -> list[str]:
    """A boxed legend: edge colour is the score's sign, width its size."""
    rows = [("positive score", layout.POSITIVE, 2.5), ("negative score", layout.NEGATIVE, 2.5)]
    if top > 0:
        rows += [
            (f"|score| {f * top:.3g}", "#666666", layout.edge_style(f * top, top)[1]) for f in (0.25, 1.0)
        ]
    lines = [
        '  subgraph cluster_legend { label="legend"; fontsize=10; style=rounded; color="#999999";',
        '    node [shape=plaintext, style="", fontsize=9, width=0.1, height=0.1];',
    ]
    for i, (text, colour, width) in enumerate(rows):
        lines.append(f'    legend_a{i} [label=""]; legend_b{i} [label={_quote(text)}];')
        lines.append(
            f"    legend_a{i} -> legend_b{i} [color={_quote(colour)}, penwidth={width:.2f}, arrowsize=0.5];"
        )
    return [*lines, "  }"]


# -- TikZ --------------------------------------------------------------------------------------------
def _tex(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#")):
        text = text.replace(char, repl)
    return text


def _rgb(hex_colour: str) -> str:
    """`#2166ac` -> `{rgb,255:red,33;green,102;blue,172}` (xcolor syntax, no \\definecolor needed)."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"{{rgb,255:red,{r};green,{g};blue,{b}}}"


def to_tikz(circuit: Circuit, x_unit: float = 1.7, y_unit: float = 1.3) -> str:
    """A standalone `tikzpicture` (needs only `\\usepackage{tikz}`): nodes at the layer layout,
    edges coloured by sign with width by |score|. Node ids are `n0, n1, ...` (names have dots)."""
    pos = layout.positions(circuit)
    ids = {node.name: f"n{i}" for i, node in enumerate(circuit.nodes)}
    lines = [
        "% circuit exported by interp-toolkit; needs \\usepackage{tikz}",
        f"\\begin{{tikzpicture}}[x={x_unit}cm, y={y_unit}cm, >=latex,",
        "  cnode/.style={draw, rounded corners=2pt, inner sep=2pt, font=\\scriptsize, align=center}]",
    ]
    for node in circuit.nodes:
        x, y = pos[node.name]
        text = _tex(layout.label(node)).replace("\n", "\\\\ ")
        fill = _rgb(layout.FILL[node.kind])
        lines.append(f"  \\node[cnode, fill={fill}] ({ids[node.name]}) at ({x:.2f}, {y:.2f}) {{{text}}};")
    top = _max_abs(circuit)
    for edge in circuit.edges:
        colour, width = layout.edge_style(circuit.edge_scores.get(edge), top)
        label = f" node[midway, font=\\tiny, fill=white, inner sep=1pt] {{{edge.qkv}}}" if edge.qkv else ""
        lines.append(
            f"  \\draw[->, draw={_rgb(colour)}, line width={width * 0.35:.2f}pt] "
            f"({ids[edge.src.name]}) --{label} ({ids[edge.dst.name]});"
        )
    lines.append("\\end{tikzpicture}")
    return "\n".join(lines) + "\n"


# -- figures -----------------------------------------------------------------------------------------
def renderer() -> str:
    """`"graphviz"` when the `dot` binary is on PATH, else `"matplotlib"`."""
    return "graphviz" if shutil.which("dot") else "matplotlib"


def _render_graphviz(circuit: Circuit, fmt: str) -> bytes:
    proc = subprocess.run(
        [shutil.which("dot") or "dot", f"-T{fmt}"],
        input=to_dot(circuit).encode(),
        capture_output=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise InterpError(
            f"graphviz dot failed to render {fmt}: {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout


def figure(circuit: Circuit):
    """A matplotlib `Figure` of the circuit in the layer layout (no pyplot, no global state).

    Arrows end at the node boxes; an edge that skips rows is bent so it does not run through the
    nodes in between.
    """
    from matplotlib.figure import Figure

    pos = layout.positions(circuit)
    n_rows = max((y for _, y in pos.values()), default=0) + 1
    half_width = max((abs(x) for x, _ in pos.values()), default=0)
    fig = Figure(
        figsize=(max(4.0, 1.5 * (2 * half_width + 1) + 1) + 1.6, max(3.0, 0.8 * n_rows + 1)),
        layout="constrained",
    )
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-half_width - 0.8, half_width + 0.8)
    ax.set_ylim(-0.6, n_rows - 0.4)
    boxes = {}
    for node in circuit.nodes:
        x, y = pos[node.name]
        boxes[node.name] = ax.text(
            x,
            y,
            layout.label(node),
            ha="center",
            va="center",
            fontsize=8,
            zorder=3,
            bbox={"boxstyle": "round,pad=0.3", "fc": layout.FILL[node.kind], "ec": "#333333", "lw": 0.6},
        )
    top = _max_abs(circuit)
    for edge in circuit.edges:
        (x0, y0), (x1, y1) = pos[edge.src.name], pos[edge.dst.name]
        colour, width = layout.edge_style(circuit.edge_scores.get(edge), top)
        bend = 0.0 if y1 - y0 <= 1 else (0.5 if x1 >= x0 else -0.5)
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            zorder=2,
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": width * 0.6,
                "shrinkA": 2,
                "shrinkB": 2,
                "patchA": boxes[edge.src.name].get_bbox_patch(),
                "patchB": boxes[edge.dst.name].get_bbox_patch(),
                "connectionstyle": f"arc3,rad={bend}",
            },
        )
        if edge.qkv:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, edge.qkv, fontsize=6, ha="center", va="center", zorder=4)
    fig.suptitle(title(circuit), fontsize=10)
    ax.legend(
        handles=_legend_handles(top),
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=7,
        title="edges",
        title_fontsize=8,
        frameon=False,
    )
    return fig


def _legend_handles(top: float) -> list:
    """Legend entries for the matplotlib figure: colour = sign of the score, width = |score|."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=layout.POSITIVE, lw=2, label="positive score"),
        Line2D([], [], color=layout.NEGATIVE, lw=2, label="negative score"),
    ]
    if top > 0:
        for f in (0.25, 1.0):
            width = layout.edge_style(f * top, top)[1] * 0.6
            handles.append(Line2D([], [], color="#666666", lw=width, label=f"|score| {f * top:.3g}"))
    return handles


def render(circuit: Circuit, fmt: str) -> bytes:
    """The figure as `fmt` bytes (svg, pdf, png), by graphviz if available else matplotlib."""
    fmt = check_format(fmt)
    if fmt not in FIGURE_FORMATS:
        raise InterpError(f"render() makes figures ({', '.join(FIGURE_FORMATS)}), not {fmt}")
    if renderer() == "graphviz":
        return _render_graphviz(circuit, fmt)
    logger.info("graphviz 'dot' not on PATH: drawing the circuit with networkx + matplotlib")
    return figure_bytes(figure(circuit), fmt, dpi=150)


# -- files -------------------------------------------------------------------------------------------
def text(circuit: Circuit, fmt: str) -> str:
    """The circuit as text in one of `TEXT_FORMATS`."""
    fmt = check_format(fmt)
    writers = {"json": lambda c: c.to_json(), "dot": to_dot, "graphml": to_graphml, "tikz": to_tikz}
    if fmt not in writers:
        raise InterpError(f"{fmt} is a figure format; use render() or save()")
    return writers[fmt](circuit)


def save(circuit: Circuit, path: str | Path, fmt: str | None = None) -> Path:
    """Write `circuit` to `path` (format from `fmt` or the suffix), atomically."""
    path = Path(path)
    fmt = check_format(fmt or path.suffix or "(none)")
    if fmt in FIGURE_FORMATS:
        atomic_write_bytes(path, render(circuit, fmt))
        return path
    atomic_write_text(path, text(circuit, fmt))
    return path


def export(
    circuit: Circuit, directory: str | Path, formats: Iterable[str], stem: str = "circuit"
) -> list[Path]:
    """Write `directory/<stem>.<suffix>` per format (all formats checked before anything is written)."""
    canonical = [check_format(f) for f in formats]
    directory = Path(directory)
    return [save(circuit, directory / f"{stem}.{SUFFIX[f]}", f) for f in dict.fromkeys(canonical)]
