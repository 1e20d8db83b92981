/* interp view: plain JavaScript drawing SVG, no third-party code.
 *
 * The page gets a bundle, {title, views: [{id, kind, title, ...}]}, either embedded
 * (window.INTERP_VIEW, the notebook form) or from the server's api/bundle, and draws one tab per
 * view: summary, graph (circuits, attribution graphs), features (SAE), heatmap (patching, tracing),
 * attention. Each view is drawn the first time its tab is shown.
 */
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const FILL = { embed: "#d9d9d9", logits: "#d9d9d9", head: "#c6dbef", mlp: "#c7e9c0", feature: "#fdd0a2", error: "#fcbba1", other: "#eeeeee" };
  const POS = "#2166ac", NEG = "#b2182b", UNSCORED = "#555555";
  let bundle = null, figures = {};

  // -- small helpers ---------------------------------------------------------------------------
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }
  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }
  function fmt(x) {
    if (x === null || x === undefined) return "n/a";
    if (typeof x !== "number") return String(x);
    if (x === 0) return "0";
    const a = Math.abs(x);
    return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : String(Number(x.toPrecision(4)));
  }
  function visibleToken(t) { return t.replace(/\n/g, "\u21b5\n"); }

  // colour maps: sequential white -> blue, diverging red (negative) -> white -> blue (positive)
  function mix(a, b, t) {
    const p = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    const [x, y] = [p(a), p(b)];
    return "rgb(" + x.map((v, i) => Math.round(v + (y[i] - v) * t)).join(",") + ")";
  }
  function colour(value, lo, hi, centre) {
    if (value === null || value === undefined || Number.isNaN(value)) return "#eeeeee";
    if (centre === null || centre === undefined) {
      const t = hi > lo ? (value - lo) / (hi - lo) : 0;
      return mix("#ffffff", "#08519c", Math.max(0, Math.min(1, t)));
    }
    const m = Math.max(Math.abs(lo - centre), Math.abs(hi - centre)) || 1;
    const t = (value - centre) / m;
    return t >= 0 ? mix("#ffffff", POS, Math.min(1, t)) : mix("#ffffff", NEG, Math.min(1, -t));
  }

  const tip = {
    show(event, text) {
      const box = document.getElementById("iv-tooltip");
      box.textContent = text;
      box.hidden = false;
      box.style.left = event.clientX + 14 + "px";
      box.style.top = event.clientY + 12 + "px";
    },
    hide() { document.getElementById("iv-tooltip").hidden = true; },
  };
  function hover(node, text) {
    node.addEventListener("mousemove", (e) => tip.show(e, typeof text === "function" ? text() : text));
    node.addEventListener("mouseleave", tip.hide);
  }
  function table(rows, header, numeric) {
    const t = el("table", { class: "iv-table" });
    if (header) t.append(el("tr", {}, header.map((h) => el("th", { text: h }))));
    for (const row of rows) {
      t.append(el("tr", {}, row.map((c, i) => el("td", { text: c, class: numeric && i > 0 ? "iv-num" : null }))));
    }
    return t;
  }
  function viewOf(kind) { return bundle.views.find((v) => v.kind === kind); }

  // -- heatmaps (patching, tracing, attention) -------------------------------------------------
  function heatmap(opts) {
    // opts: values [rows][cols], xticks, yticks, xlabel, ylabel, name, centre, lo, hi, cell, title
    const rows = opts.values.length, cols = rows ? opts.values[0].length : 0;
    const flat = opts.values.flat().filter((v) => v !== null && !Number.isNaN(v));
    const lo = opts.lo !== undefined ? opts.lo : Math.min(...flat, opts.centre ?? Infinity);
    const hi = opts.hi !== undefined ? opts.hi : Math.max(...flat, opts.centre ?? -Infinity);
    const cell = opts.cell || Math.max(12, Math.min(48, Math.floor(760 / Math.max(cols, 1))));
    const longest = (ticks) => Math.max(0, ...ticks.map((t) => String(t).length));
    const left = 18 + Math.min(200, 6.5 * longest(opts.yticks)) + (opts.ylabel ? 16 : 0);
    const bottom = 18 + Math.min(200, 4.8 * longest(opts.xticks)) + (opts.xlabel ? 16 : 0);
    const top = opts.title ? 24 : 8, bar = 104;
    const width = left + cols * cell + bar, height = Math.max(top + rows * cell, top + 124) + bottom;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "iv-heat", "data-rows": rows, "data-cols": cols });
    if (opts.title) root.append(svg("text", { x: left, y: 15, "font-weight": 600, text: opts.title }));
    const grid = svg("g", { transform: `translate(${left},${top})` });
    root.append(grid);
    opts.values.forEach((row, i) => row.forEach((v, j) => {
      const rect = svg("rect", { class: "iv-cell", x: j * cell, y: i * cell, width: cell, height: cell, fill: colour(v, lo, hi, opts.centre) });
      hover(rect, `${opts.ylabel || "row"} ${opts.yticks[i]}\n${opts.xlabel || "col"} ${opts.xticks[j]}\n${opts.name || "value"}: ${fmt(v)}`);
      grid.append(rect);
    }));
    opts.yticks.forEach((t, i) => grid.append(svg("text", { x: -4, y: i * cell + cell / 2 + 4, "text-anchor": "end", text: t })));
    opts.xticks.forEach((t, j) => {
      const x = j * cell + cell / 2 + 4, y = rows * cell + 6;
      grid.append(svg("text", { x, y, transform: `rotate(-60 ${x} ${y})`, "text-anchor": "end", text: t }));
    });
    if (opts.xlabel) root.append(svg("text", { x: left + (cols * cell) / 2, y: height - 4, "text-anchor": "middle", "font-weight": 600, text: opts.xlabel }));
    if (opts.ylabel) {
      const x = 12, y = top + (rows * cell) / 2;
      root.append(svg("text", { x, y, transform: `rotate(-90 ${x} ${y})`, "text-anchor": "middle", "font-weight": 600, text: opts.ylabel }));
    }
    // colour bar
    const barH = Math.max(120, Math.min(rows * cell, 220)), bx = left + cols * cell + 14, steps = 24;
    for (let s = 0; s < steps; s++) {
      const v = hi - ((hi - lo) * (s + 0.5)) / steps;
      root.append(svg("rect", { x: bx, y: top + (s * barH) / steps, width: 12, height: barH / steps + 0.5, fill: colour(v, lo, hi, opts.centre) }));
    }
    root.append(svg("text", { x: bx + 16, y: top + 9, text: fmt(hi) }));
    root.append(svg("text", { x: bx + 16, y: top + barH, text: fmt(lo) }));
    if (opts.name && opts.name.length <= 28) {
      const x = bx + 80, y = top + barH / 2;
      root.append(svg("text", { x, y, transform: `rotate(-90 ${x} ${y})`, "text-anchor": "middle", text: opts.name }));
    }
    return root;
  }

  function drawHeatmap(view, box) {
    box.append(el("h2", { class: "iv-h", text: view.title }));
    if (view.name) box.append(el("p", { class: "iv-muted", text: "colour: " + view.name + " (hover a cell for its value)" }));
    box.append(heatmap({ ...view, title: null }));
  }

  // -- attention -------------------------------------------------------------------------------
  function attentionHeatmap(att, layer, head, cell) {
    return heatmap({
      values: att.patterns[layer][head], xticks: att.tokens, yticks: att.tokens, xlabel: "key", ylabel: "query",
      name: "attention", lo: 0, hi: 1, centre: null, cell, title: `L${layer}.H${head}`,
    });
  }
  function drawAttention(view, box) {
    box.append(el("h2", { class: "iv-h", text: view.title }));
    const grid = el("div", { class: "iv-heads", style: `grid-template-columns: repeat(${Math.min(view.heads, 6)}, 88px)` });
    const big = el("div", { class: "iv-attn-big" });
    const select = (l, h) => {
      grid.querySelectorAll(".iv-thumb").forEach((t) => t.classList.toggle("iv-selected", t.dataset.head === `${l}.${h}`));
      big.replaceChildren(attentionHeatmap(view, l, h, Math.max(12, Math.min(26, Math.floor(520 / view.tokens.length)))));
    };
    for (let l = 0; l < view.layers; l++) {
      for (let h = 0; h < view.heads; h++) {
        const n = view.tokens.length, c = 80 / n;
        const thumb = svg("svg", { width: 80, height: 80 });
        view.patterns[l][h].forEach((row, i) => row.forEach((v, j) => thumb.append(svg("rect", { x: j * c, y: i * c, width: c + 0.3, height: c + 0.3, fill: colour(v, 0, 1, null) }))));
        grid.append(el("div", { class: "iv-thumb", "data-head": `${l}.${h}`, onclick: () => select(l, h) }, [thumb, el("div", { text: `L${l}.H${h}` })]));
      }
    }
    box.append(el("p", { class: "iv-muted", text: "Each head's pattern on the prompt (rows: query position, columns: key position). Click a head to enlarge." }));
    box.append(el("div", { class: "iv-row" }, [grid, big]));
    select(0, 0);
  }

  // -- features --------------------------------------------------------------------------------
  function histogram(hist) {
    const w = 300, h = 110, counts = hist.counts, max = Math.max(...counts, 1), bw = w / counts.length;
    const root = svg("svg", { width: w + 40, height: h + 34, class: "iv-hist" });
    const g = svg("g", { transform: "translate(34,6)" });
    root.append(g);
    counts.forEach((c, i) => {
      const bh = (c / max) * h;
      const r = svg("rect", { x: i * bw, y: h - bh, width: Math.max(1, bw - 1), height: bh, fill: "#3b6ea8" });
      hover(r, `activation ${fmt(hist.edges[i])} to ${fmt(hist.edges[i + 1])}: ${c} tokens`);
      g.append(r);
    });
    g.append(svg("line", { x1: 0, y1: h, x2: w, y2: h, stroke: "#333" }));
    g.append(svg("text", { x: 0, y: h + 14, "font-size": 11, text: fmt(hist.edges[0]) }));
    g.append(svg("text", { x: w, y: h + 14, "font-size": 11, "text-anchor": "end", text: fmt(hist.edges[hist.edges.length - 1]) }));
    g.append(svg("text", { x: w / 2, y: h + 27, "font-size": 11, "text-anchor": "middle", text: "activation (tokens where the feature fires)" }));
    g.append(svg("text", { x: -4, y: 10, "font-size": 11, "text-anchor": "end", text: String(max) }));
    return root;
  }
  function contextLine(ctx, peak) {
    const line = el("div", { class: "iv-context" });
    ctx.tokens.forEach((tok, i) => {
      const a = ctx.acts[i] || 0, alpha = peak > 0 ? Math.max(0, Math.min(1, a / peak)) : 0;
      // a word's leading space stays outside the highlight, so shading covers the word only
      const [, space, word] = /^( *)([\s\S]*)$/.exec(tok);
      const span = el("span", { class: "iv-tok" + (i === ctx.position ? " iv-peak" : ""), style: `background: rgba(230, 85, 13, ${alpha.toFixed(2)})`, text: visibleToken(word || space) });
      hover(span, `${JSON.stringify(tok)}\nactivation ${fmt(a)}`);
      line.append(word ? space : "", span);
    });
    return line;
  }
  function logitTable(title, pairs) {
    return el("div", {}, [el("h3", { class: "iv-h", text: title }),
      pairs.length ? el("table", { class: "iv-table" }, pairs.map(([t, v]) => el("tr", {}, [el("td", {}, [el("code", { text: t })]), el("td", { class: "iv-num", text: (v >= 0 ? "+" : "") + fmt(v) })]))) : el("p", { class: "iv-muted", text: "not recorded" })]);
  }
  function featureCard(f) {
    const card = el("div", { class: "iv-feature-card", "data-index": f.index });
    card.append(el("h2", { class: "iv-h", text: `Feature ${f.index}` }));
    card.append(table([["density", fmt(f.density)], ["mean activation (when firing)", fmt(f.mean_activation)], ["max activation", fmt(f.max_activation)]], null, true));
    if (f.histogram) card.append(el("h3", { class: "iv-h", text: "Activation histogram" }), histogram(f.histogram));
    card.append(el("div", { class: "iv-logits" }, [logitTable("Top promoted tokens", f.top_logits || []), logitTable("Top suppressed tokens", f.bottom_logits || [])]));
    card.append(el("h3", { class: "iv-h", text: `Top activating contexts (${f.contexts.length})` }));
    const peak = Math.max(f.max_activation || 0, ...f.contexts.flatMap((c) => c.acts));
    f.contexts.forEach((c) => card.append(contextLine(c, peak)));
    return card;
  }
  function drawFeatures(view, box) {
    box.append(el("h2", { class: "iv-h", text: view.title }));
    const metrics = Object.entries(view.metrics || {}).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${fmt(v)}`).join(" \u00b7 ");
    if (metrics) box.append(el("p", { class: "iv-muted", text: metrics }));
    const search = el("input", { type: "search", placeholder: "search: index or token", "aria-label": "search features" });
    const sort = el("select", { "aria-label": "sort features" }, ["density", "mean_activation", "max_activation", "index"].map((k) => el("option", { value: k, text: "sort by " + k.replace("_", " ") })));
    const list = el("table", { class: "iv-table" });
    const detail = el("div", { class: "iv-grow iv-feature-detail" }, [el("p", { class: "iv-muted", text: "Click a feature to see its contexts." })]);
    const text = (f) => [f.index, ...f.contexts.flatMap((c) => c.tokens), ...(f.top_logits || []).map((p) => p[0])].join(" ").toLowerCase();
    const render = () => {
      const q = search.value.trim().toLowerCase(), key = sort.value;
      const shown = view.features.filter((f) => !q || text(f).includes(q)).sort((a, b) => key === "index" ? a.index - b.index : (b[key] ?? -1) - (a[key] ?? -1));
      list.replaceChildren(el("tr", {}, ["feature", "density", "mean act"].map((h) => el("th", { text: h }))));
      for (const f of shown) {
        list.append(el("tr", { class: "iv-feature", "data-index": f.index, onclick: () => choose(f) }, [el("td", { text: "#" + f.index }), el("td", { class: "iv-num", text: fmt(f.density) }), el("td", { class: "iv-num", text: fmt(f.mean_activation) })]));
      }
    };
    const choose = (f) => {
      list.querySelectorAll("tr.iv-feature").forEach((r) => r.classList.toggle("iv-selected", Number(r.dataset.index) === f.index));
      detail.replaceChildren(featureCard(f));
    };
    search.addEventListener("input", render);
    sort.addEventListener("change", render);
    render();
    box.append(el("div", { class: "iv-row" }, [el("div", { class: "iv-feature-list" }, [search, sort, list]), detail]));
  }

  // -- graphs ----------------------------------------------------------------------------------
  function edgeStyle(score, top) {
    if (score === null || score === undefined || !(top > 0)) return [UNSCORED, 1.2];
    return [score >= 0 ? POS : NEG, 0.8 + 4.2 * Math.abs(score) / top];
  }
  function legend(top) {
    const box = el("div", { class: "iv-legend" });
    const line = (colourValue, width, label) => el("span", {}, [svg("svg", { width: 34, height: 12 }, [svg("line", { x1: 2, y1: 6, x2: 32, y2: 6, stroke: colourValue, "stroke-width": width })]), " " + label]);
    box.append(el("strong", { text: "edges:" }), line(POS, 2.5, "positive score"), line(NEG, 2.5, "negative score"));
    if (top > 0) for (const f of [0.25, 1]) box.append(line("#666", edgeStyle(f * top, top)[1], `|score| ${fmt(f * top)}`));
    box.append(el("strong", { text: "nodes:" }));
    for (const [kind, fill] of Object.entries(FILL)) {
      if (kind === "other" || kind === "logits") continue;
      box.append(el("span", {}, [svg("svg", { width: 14, height: 12 }, [svg("rect", { x: 1, y: 1, width: 12, height: 10, rx: 2, fill, stroke: "#333" })]), " " + (kind === "embed" ? "embed / logits" : kind)]));
    }
    return box;
  }
  function drawGraph(view, box) {
    box.append(el("h2", { class: "iv-h", text: view.title }));
    const scored = view.edges.map((e) => Math.abs(e.score ?? 0));
    const top = Math.max(0, ...scored);
    const unitX = view.columns ? 64 : 110, labelW = 110, margin = 40;
    const cols = view.nodes.map((n) => n.col), minCol = Math.min(0, ...cols), maxCol = Math.max(0, ...cols);
    const nRows = view.rows.length;
    // rows spread so a wide graph keeps roughly the box's shape (about 2:1) when fitted
    const unitY = Math.min(240, Math.max(78, ((maxCol - minCol) * unitX + labelW) / 2 / Math.max(nRows - 1, 1)));
    const pos = {};
    for (const n of view.nodes) pos[n.id] = [labelW + margin + (n.col - minCol) * unitX, margin + (nRows - 1 - n.row) * unitY];
    const width = labelW + 2 * margin + (maxCol - minCol) * unitX + 60, height = 2 * margin + (nRows - 1) * unitY + (view.columns ? 40 : 0);
    const root = svg("svg", { class: "iv-graph", "data-nodes": view.nodes.length, "data-edges": view.edges.length });
    const defs = svg("defs");
    for (const [name, c] of [["pos", POS], ["neg", NEG], ["none", UNSCORED]]) {
      defs.append(svg("marker", { id: `iv-arrow-${view.id}-${name}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, [svg("path", { d: "M0,0 L10,5 L0,10 z", fill: c })]));
    }
    root.append(defs);
    const stage = svg("g", { class: "iv-stage" });
    root.append(stage);
    view.rows.forEach((label, r) => stage.append(svg("text", { class: "iv-rowlabel", x: 8, y: margin + (nRows - 1 - r) * unitY + 4, text: label })));
    if (view.columns) view.columns.forEach(([t, c]) => {
      const x = labelW + margin + (c - minCol) * unitX, y = margin + (nRows - 1) * unitY + 34;
      stage.append(svg("text", { class: "iv-rowlabel iv-collabel", x, y, "text-anchor": "middle", text: visibleToken(String(t)) }));
    });
    const edgeLayer = svg("g"), nodeLayer = svg("g");
    stage.append(edgeLayer, nodeLayer);
    const nodeEls = {}, degree = {};
    const byId = Object.fromEntries(view.nodes.map((n) => [n.id, n]));
    const parallel = {}, seen = {};  // edges sharing src and dst (q/k/v inputs) fan out
    for (const e of view.edges) parallel[e.src + ">" + e.dst] = (parallel[e.src + ">" + e.dst] || 0) + 1;
    const edgeEls = view.edges.filter((e) => pos[e.src] && pos[e.dst]).map((e) => {
      const [[x0, y0], [x1, y1]] = [pos[e.src], pos[e.dst]];
      const [stroke, w] = edgeStyle(e.score, top);
      const skip = Math.abs(byId[e.dst].row - byId[e.src].row) > 1;
      const pair = e.src + ">" + e.dst, nth = (seen[pair] = (seen[pair] || 0) + 1) - 1;
      const fan = (nth - (parallel[pair] - 1) / 2) * 36;
      const bend = fan + (skip ? (x1 >= x0 ? 1 : -1) * 0.25 * Math.hypot(x1 - x0, y1 - y0) : 0);
      const mx = (x0 + x1) / 2 + bend, my = (y0 + y1) / 2;
      const kind = e.score === null || e.score === undefined ? "none" : e.score >= 0 ? "pos" : "neg";
      const path = svg("path", { class: "iv-edge", d: `M${x0},${y0 - 12} Q${mx},${my} ${x1},${y1 + 13}`, stroke, "stroke-width": w, "stroke-opacity": 0.75, "marker-end": `url(#iv-arrow-${view.id}-${kind})`, "data-score": e.score });
      hover(path, `${e.src} \u2192 ${e.dst}${e.label ? " (" + e.label + ")" : ""}\nscore ${fmt(e.score)}`);
      edgeLayer.append(path);
      return { e, path };
    });
    for (const n of view.nodes) {
      const [x, y] = pos[n.id];
      const w = Math.max(44, 7 * n.label.length + 12);
      const g = svg("g", { class: "iv-node", "data-id": n.id, transform: `translate(${x},${y})` }, [
        svg("rect", { x: -w / 2, y: -12, width: w, height: 24, rx: 6, fill: FILL[n.kind] || FILL.other }),
        svg("text", { x: 0, y: 4, "text-anchor": "middle", text: n.label }),
      ]);
      hover(g, () => `${n.id} (${n.kind})\nscore ${fmt(n.score)}\nedges in ${(degree[n.id] || {}).in || 0}, out ${(degree[n.id] || {}).out || 0} (shown)`);
      g.addEventListener("click", (ev) => { ev.stopPropagation(); select(n); });
      nodeLayer.append(g);
      nodeEls[n.id] = g;
    }

    // pan and zoom: the stage's transform
    let k = 1, tx = 0, ty = 0, drag = null;
    const apply = () => stage.setAttribute("transform", `translate(${tx},${ty}) scale(${k})`);
    const fit = () => {
      const r = graphBox.getBoundingClientRect();
      k = Math.min(1.6, Math.max(0.2, Math.min(r.width / width, r.height / height)));
      tx = (r.width - width * k) / 2; ty = (r.height - height * k) / 2;
      apply();
    };
    root.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = root.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
      const f = Math.exp(-ev.deltaY * 0.0015), nk = Math.max(0.1, Math.min(8, k * f));
      tx = px - ((px - tx) * nk) / k; ty = py - ((py - ty) * nk) / k; k = nk;
      apply();
    }, { passive: false });
    root.addEventListener("mousedown", (ev) => { drag = [ev.clientX - tx, ev.clientY - ty]; });
    window.addEventListener("mousemove", (ev) => { if (drag) { tx = ev.clientX - drag[0]; ty = ev.clientY - drag[1]; apply(); } });
    window.addEventListener("mouseup", () => { drag = null; });

    // threshold slider
    const slider = el("input", { type: "range", min: 0, max: top > 0 ? top : 1, step: top > 0 ? top / 400 : 0.01, value: 0, "aria-label": "edge threshold", class: "iv-threshold" });
    const count = el("span", { class: "iv-edge-count" });
    const prune = () => {
      const t = Number(slider.value);
      for (const id in degree) delete degree[id];
      let shown = 0;
      for (const { e, path } of edgeEls) {
        const keep = e.score === null || e.score === undefined || Math.abs(e.score) >= t;
        path.classList.toggle("iv-pruned", !keep);
        if (keep) {
          shown++;
          (degree[e.src] = degree[e.src] || { in: 0, out: 0 }).out++;
          (degree[e.dst] = degree[e.dst] || { in: 0, out: 0 }).in++;
        }
      }
      for (const n of view.nodes) nodeEls[n.id].classList.toggle("iv-faded", t > 0 && !degree[n.id]);
      count.textContent = `min |score| ${fmt(t)}: ${shown} of ${edgeEls.length} edges`;
      root.dataset.visibleEdges = shown;
    };
    slider.addEventListener("input", prune);
    const toolbar = el("div", { class: "iv-toolbar" }, [el("label", {}, ["edge threshold ", slider]), count, el("button", { text: "fit", onclick: fit }), el("span", { class: "iv-muted", text: "drag to pan, wheel to zoom, click a node" })]);
    const graphBox = el("div", { class: "iv-graph-box" }, [root]);
    const side = el("div", { class: "iv-side" }, [el("p", { class: "iv-muted", text: "Click a node to see its scores and edges." })]);
    box.append(toolbar, el("div", { class: "iv-row" }, [el("div", { class: "iv-grow" }, [graphBox, legend(top)]), side]));
    prune();
    requestAnimationFrame(fit);

    function select(n) {
      Object.values(nodeEls).forEach((g) => g.classList.toggle("iv-selected", g.dataset.id === n.id));
      const rows = [["kind", n.kind], ["score", fmt(n.score)], ...Object.entries(n.info || {}).map(([a, b]) => [a, fmt(b)])];
      const ins = view.edges.filter((e) => e.dst === n.id), outs = view.edges.filter((e) => e.src === n.id);
      const byScore = (a, b) => Math.abs(b.score ?? 0) - Math.abs(a.score ?? 0);
      const parts = [el("h2", { class: "iv-h", text: n.id }), table(rows, null, true)];
      const att = viewOf("attention");
      if (n.kind === "head" && att && n.info.layer < att.layers && n.info.head < att.heads) {
        parts.push(el("h3", { class: "iv-h", text: "Attention pattern on the prompt" }), attentionHeatmap(att, n.info.layer, n.info.head, Math.max(9, Math.min(18, Math.floor(240 / att.tokens.length)))));
      } else if (n.kind === "head") {
        parts.push(el("p", { class: "iv-muted", text: "No attention.json in this folder, so no pattern to show." }));
      }
      // the feature's dashboard: from the SAE at this node's site (L1.resid), else the only SAE shown
      const all = bundle.views.filter((v) => v.kind === "features");
      const site = `L${n.info.layer}.${n.info.site}`;
      const feats = all.find((v) => v.site === site) || (all.length === 1 && !all[0].site ? all[0] : null);
      const card = feats && n.kind === "feature" && feats.features.find((f) => f.index === n.info.index);
      if (card) parts.push(featureCard(card));
      else if (n.kind === "feature") parts.push(el("p", { class: "iv-muted", text: "This feature's SAE evaluation (eval.json) is not in this folder or among the SAEs it names, or does not browse this feature." }));
      const name = (id) => (byId[id] && byId[id].label !== id ? `${byId[id].label} (${id})` : id);
      parts.push(el("h3", { class: "iv-h", text: `Incoming edges (${ins.length})` }), table(ins.sort(byScore).map((e) => [name(e.src) + (e.label ? ` .${e.label}` : ""), fmt(e.score)]), null, true));
      parts.push(el("h3", { class: "iv-h", text: `Outgoing edges (${outs.length})` }), table(outs.sort(byScore).map((e) => [name(e.dst), fmt(e.score)]), null, true));
      side.replaceChildren(...parts);
    }
  }

  // -- summary ---------------------------------------------------------------------------------
  function drawSummary(view, box) {
    box.append(el("h2", { class: "iv-h", text: bundle.title }));
    const left = el("div", { class: "iv-summary-tables" }), right = el("div", { class: "iv-grow" });
    box.append(el("div", { class: "iv-row" }, [left, right]));
    if (view.rows.length) left.append(table(view.rows, ["", "value"], true));
    for (const t of view.tables || []) left.append(el("h3", { class: "iv-h", text: t.title }), table(t.rows, t.columns, true));
    if (view.figures.length) {
      right.append(el("h3", { class: "iv-h", text: "Figures" }));
      right.append(el("div", { class: "iv-figures" }, view.figures.map((f) => el("figure", {}, [el("img", { src: figures[f] || "files/" + encodeURIComponent(f), alt: f, loading: "lazy" }), el("figcaption", { text: f })]))));
    }
  }

  const DRAW = { summary: drawSummary, graph: drawGraph, features: drawFeatures, heatmap: drawHeatmap, attention: drawAttention };
  const TAB = { summary: "Summary", graph: "Graph", features: "Features", heatmap: "Heatmap", attention: "Attention" };

  function showView(id) {
    for (const panel of document.querySelectorAll(".iv-view")) {
      const on = panel.dataset.view === id;
      panel.hidden = !on;
      if (on && !panel.dataset.drawn) {
        panel.dataset.drawn = "1";
        const view = bundle.views.find((v) => v.id === id);
        try { DRAW[view.kind](view, panel); } catch (err) { panel.append(el("p", { class: "iv-error", text: "could not draw this view: " + err })); }
      }
    }
    for (const b of document.querySelectorAll("#iv-tabs button")) b.setAttribute("aria-selected", String(b.dataset.view === id));
  }

  function render(data) {
    bundle = data;
    document.getElementById("iv-title").textContent = bundle.title;
    document.title = bundle.title + " - interp view";
    const main = document.getElementById("iv-main"), tabs = document.getElementById("iv-tabs");
    main.replaceChildren();
    tabs.replaceChildren();
    for (const view of bundle.views) {
      const label = view.kind === "summary" ? "Summary" : `${TAB[view.kind]}: ${view.title}`;
      tabs.append(el("button", { role: "tab", "data-view": view.id, "data-kind": view.kind, text: label, onclick: () => { rememberView(view.id); showView(view.id); } }));
      main.append(el("section", { class: "iv-view", "data-view": view.id, "data-kind": view.kind, hidden: "" }));
    }
    const wanted = location.hash.slice(1);
    showView(bundle.views.some((v) => v.id === wanted) ? wanted : (bundle.views[1] || bundle.views[0]).id);
  }

  function rememberView(id) {
    // the tab survives a reload; a sandboxed notebook frame (opaque origin) may refuse history changes
    try { history.replaceState(null, "", "#" + id); } catch (err) { /* not remembered */ }
  }

  function fail(message) {
    document.getElementById("iv-main").replaceChildren(el("p", { class: "iv-error", text: message }));
  }

  function start() {
    if (window.INTERP_VIEW) {
      figures = window.INTERP_VIEW.figures || {};
      render(window.INTERP_VIEW.bundle);
      return;
    }
    fetch("api/bundle").then(async (r) => {
      const data = await r.json();
      if (!r.ok) throw new Error(data.error || r.statusText);
      render(data);
    }).catch((err) => fail(String(err.message || err)));
  }

  window.InterpView = { start, showView };
})();
