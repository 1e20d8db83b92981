"""Edge-level forward passes: every destination reads its own copy of the residual stream.

The input of destination d (a head, one q/k/v input of a head, an MLP, or the logits) is the sum
of the outputs of every source upstream of it. To patch edge s -> d, d reads

    input_d = actual_d + sum_s w[d, s] * (alt_s - out_s) + probe_d

where `actual_d` is the residual stream d would read anyway, `out_s` the source's output in this
run, `alt_s` its output under the ablation (a corrupted run, a batch mean, ...), `w` in [0, 1] the
patch weight of the edge (1 = edge removed), and `probe_d` an optional zero tensor whose gradient is
dMetric/dinput_d (what EAP needs). Nothing else in the model changes: the residual stream itself
keeps its value, only the reads differ.

The modules and weights behind the hook points come from `architecture.describe(model)`, which
reads the model's adapter (`model.arch`, `model.weight`); the same code serves every wired family:
  1. `blocks.{l}.hook_resid_pre` records the block input (for l = 0 also the `embed` source, which
     `embed=` may replace, e.g. for integrated gradients along interpolated inputs);
  2. in a block whose heads are patched, `attn.hook_q/k/v` are recomputed per head from per-head
     inputs [batch, pos, head, d_model]: the attention norm, then that head's slice of the q/k/v
     weights (grouped-query k/v inputs are per k/v head). What follows (q/k norms, rotary, the
     attention itself) is the model's own code. An unpatched block runs as is;
  3. `attn.hook_z` through each head's slice of the output projection (times the residual
     multiplier) gives the head outputs; when a post-sublayer norm follows the projection, each
     head's output is scaled by that norm's factor in this run (`architecture.post_scale`), so head
     outputs add up to what joins the stream;
  4. pre-hooks on the MLP's input norm and on the final norm rewrite the MLP's and the logits'
     input (the residual stream is untouched; with a parallel residual the MLP's input norm reads
     the block input, and the MLP does not read its own block's heads; an MLP sharing the attention
     norm gets that norm of its own read); `hook_mlp_out` is the MLP source.
A probed block that is not rewired keeps the model's own q, k, v, adds a zero probe to each, and
turns their gradients into input gradients: dMetric/dinput_h = vjp of the attention norm at the
block input applied to W_q,h g_q,h (+ the k and v terms), a little elementwise work instead of a
per-head forward and backward through the norm and projections. Every hook is removed on every
exit path.

    >>> run = forward(model, graph, tokens, record=True)          # the model's own forward
    >>> run.sources.shape                                         # [n_sources, batch, pos, d_model]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from circuits.discovery.architecture import Wiring, describe, post_scale
from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.norm_vjp import closed_form
from interp import HookedModel
from interp.errors import InterpError


@dataclass
class EdgeRun:
    """What one edge-level forward produced."""

    logits: Tensor  # [batch, pos, vocab]
    sources: Tensor | None = None  # [n_sources, batch, pos, d_model] when recorded
    probes: list[Tensor] = field(default_factory=list)  # zero tensors added to reads, when probing
    readers: list[Callable[[list[Tensor], int], Tensor]] = field(default_factory=list)
    """Per destination group, in destination order: (the gradients of all probes, the number of
    stacked copies of the batch) -> dvalue/dinput of its destinations summed over the copies
    [n, batch / copies, pos, d_model]."""

    def grads(self, graph: ComputationalGraph, value: Tensor, groups: int = 1) -> Tensor:
        """dvalue/dinput of every destination [n_dests, batch, pos, d_model], for a run made with
        `probe=True` (`value` is a scalar computed from `logits`, e.g. the metric). Uses
        `torch.autograd.grad`, so the model's parameters collect no `.grad`. With `groups` > 1 the
        batch is `groups` stacked copies and their gradients are summed: [n_dests, batch / groups, ...]."""
        if not self.probes:
            raise InterpError("grads() needs a run made with probe=True")
        grads = torch.autograd.grad(value, self.probes, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self.probes, grads, strict=True)]
        out = torch.cat([reader(grads, groups) for reader in self.readers])
        if out.shape[0] != len(graph.dests):
            raise InterpError(f"expected {len(graph.dests)} destination gradients, got {out.shape[0]}")
        return out


def _summed(grads: Tensor, groups: int) -> Tensor:
    """[n, batch, ...] -> [n, batch / groups, ...]: the sum over `groups` stacked copies of the batch."""
    return grads.unflatten(1, (groups, -1)).sum(1) if groups > 1 else grads


@contextlib.contextmanager
def _pre_hooks(
    hooks: list[tuple[nn.Module, Callable[[Tensor], Tensor]]],
    post: list[tuple[nn.Module, Callable[[nn.Module, tuple, Tensor], Tensor | None]]] = (),
) -> Iterator[None]:
    """Forward pre-hooks that replace a module's first input, and forward hooks `post` (a result
    other than None replaces the output); removed on every exit path."""
    handles = []
    try:
        for module, fn in hooks:
            handles.append(module.register_forward_pre_hook(lambda m, args, fn=fn: (fn(args[0]), *args[1:])))
        for module, fn in post:
            handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


class _Forward:
    """The hook callbacks of one edge-level forward (one instance per call)."""

    def __init__(
        self,
        model: HookedModel,
        graph: ComputationalGraph,
        alt: Tensor | None,
        patch: Tensor | None,
        probe: bool,
        embed: Tensor | None,
    ):
        self.model, self.graph, self.arch = model, graph, describe(model)
        self._weights_cache: dict[tuple, Tensor] = {}  # read once per forward
        self.alt, self.patch, self.probe, self.embed = alt, patch, probe, embed
        arch: Wiring = self.arch
        if (arch.n_heads, arch.n_kv_heads) != (graph.n_heads, graph.n_kv_heads) or (
            arch.parallel_residual != graph.parallel_residual
        ):
            raise InterpError(
                "this computational graph was built for a different model: use ComputationalGraph.build(model.cfg)"
            )
        self.chunks: list[Tensor] = []  # source outputs in order, each [n, batch, pos, d_model]
        self.resid: dict[int, Tensor] = {}  # block -> its input [batch, pos, d_model]
        self.head_inputs: dict[int, tuple[Tensor, Tensor, Tensor]] = {}  # block -> normalised q/k/v inputs
        self.qkv_probes: dict[int, list[int]] = {}  # unrewired probed block -> indices of its q/k/v probes
        self.qkv_values: dict[int, list[Tensor]] = {}  # the same blocks -> their own q, k, v
        self.head_chunk: dict[int, int] = {}  # block -> index of its head outputs in `chunks`
        self.probes: list[Tensor] = []
        self.readers: list[
            tuple[int, Callable[[list[Tensor], int], Tensor]]
        ] = []  # (first destination, reader)

    # -- the pieces ---------------------------------------------------------------------------------
    def weight(self, kind: str, layer: int, part: int = 0) -> Tensor:
        """W_qkv [heads, d_model, d_head], b_qkv [heads, d_head] or W_O [head, d_head, d_model] of a
        block, looked up once per forward."""
        key = (kind, layer, part)
        if key not in self._weights_cache:
            fn = {"w": self.arch.w_qkv, "b": self.arch.b_qkv}.get(kind)
            self._weights_cache[key] = self.arch.w_o(layer) if kind == "o" else fn(layer, part)
        return self._weights_cache[key]

    def sources(self, n: int) -> Tensor:
        return torch.cat(self.chunks)[:n]  # [n, batch, pos, d_model]

    def _weights(self, dests: slice) -> Tensor | None:
        """Patch weights of destinations `dests` over their upstream sources, or None when all zero."""
        if self.patch is None:
            return None
        n_up = self.graph.n_upstream[dests.start]
        w = self.patch[..., dests, :n_up]  # [(batch,) n_dests, n_up]
        return w if bool((w != 0).any()) else None

    def _delta(self, dests: slice) -> Tensor | None:
        """sum_s w[d, s] (alt_s - out_s): [batch, pos, n_dests, d_model], or None."""
        w = self._weights(dests)
        if w is None:
            return None
        n_up = self.graph.n_upstream[dests.start]
        diff = self.alt[:n_up] - self.sources(n_up)  # [n_up, batch, pos, d_model]
        if w.ndim == 2:
            return torch.einsum("ts,sbpd->bptd", w.to(diff.dtype), diff)
        return torch.einsum("bts,sbpd->bptd", w.to(diff.dtype), diff)

    def _add_probe(self, like: Tensor) -> Tensor:
        probe = torch.zeros_like(like, requires_grad=True)
        self.probes.append(probe)
        return probe

    def _rewire(self, x: Tensor, dests: slice) -> Tensor:
        """x [batch, pos, d_model] as read by `dests`: [batch, pos, n_dests, d_model]."""
        delta = self._delta(dests)
        width = dests.stop - dests.start
        out = x[:, :, None, :].expand(*x.shape[:2], width, x.shape[-1])
        if delta is not None:
            out = out + delta
        if self.probe:
            out = out + self._add_probe(out)
            index = len(self.probes) - 1
            self.readers.append(
                (dests.start, lambda grads, groups: _summed(grads[index].movedim(2, 0), groups))
            )
        return out

    def _stacked(self, parts: list[Tensor]) -> Tensor:
        """Per-part tensors [heads, c, ...] in `head_grads`' layout: one row per q/k/v head with
        separate inputs, else per head over (q, k, v) x c."""
        return torch.cat(parts) if self.graph.separate_qkv else torch.cat(parts, dim=1)

    def head_weights(self, layer: int) -> Tensor:
        """The q, k, v weights of a block as one batched matrix [dests, contracted, d_model], matching
        `head_grads`' layout (`_stacked`). When the attention norm has a closed-form VJP, its gain and
        centring are folded in."""
        key = ("qkv", layer, 0)
        if key not in self._weights_cache:
            # per part [heads, d_head, d_model]
            w = self._stacked([self.weight("w", layer, part).transpose(1, 2) for part in range(3)])
            norm = closed_form(self.arch.attn_norms[layer])
            self._weights_cache[key] = w if norm is None else norm.fold(w)
        return self._weights_cache[key]

    def _layout(self, parts: list[Tensor]) -> Tensor:
        """Per-part [batch, pos, heads, d_head] -> [dests, batch * pos, contracted] (`_stacked`)."""
        dim = 2 if self.graph.separate_qkv else 3
        return torch.cat(parts, dim=dim).flatten(0, 1).transpose(0, 1)

    @torch.no_grad()  # a result, not part of any graph (torch.func.vjp still differentiates the norm)
    def head_grads(self, layer: int, grads: list[Tensor], groups: int) -> Tensor:
        """Input gradients of an unrewired block's head destinations, summed over the `groups`
        stacked copies of the batch [n_dests, batch / groups, pos, d_model], from the gradients at
        its q, k, v [batch, pos, heads, d_head]."""
        g = [grads[i] for i in self.qkv_probes[layer]]  # per part [batch, pos, heads, d_head]
        batch, pos = g[0].shape[:2]
        flat = self._layout(g)  # [q heads + 2 kv heads, batch * pos, d_head] or [heads, ., 3 d_head]
        w = self.head_weights(layer).to(flat.dtype)
        norm = closed_form(self.arch.attn_norms[layer])
        if norm is not None:  # `head_weights` folded the norm's gain (and centring) in
            dots = []  # per part: sum over d_head of g (xhat W^T) [batch, pos, heads], from q, k, v
            for part, (g_part, value) in enumerate(zip(g, self.qkv_values[layer], strict=True)):
                offset = norm.bias_term(self.weight("w", layer, part), self.weight("b", layer, part))
                dots.append(torch.linalg.vecdot(g_part, value - offset.to(value.dtype)))
            dots = torch.cat(dots, dim=2) if self.graph.separate_qkv else sum(dots)
            return norm.vjp_summed(self.resid[layer], flat, w, groups, dots.flatten(0, 1).T.to(flat.dtype))
        normed = torch.bmm(flat, w)  # [n_dests, batch * pos, d_model]
        normed = normed.unflatten(1, (batch, pos))  # [n_dests, batch, pos, d_model]
        _, vjp = torch.func.vjp(self.arch.attn_norms[layer], self.resid[layer].detach())
        return _summed(torch.vmap(vjp)(normed)[0], groups)

    # -- callbacks --------------------------------------------------------------------------------------
    def resid_pre(self, layer: int) -> Callable[[Tensor, str], Tensor | None]:
        def hook(x: Tensor, name: str) -> Tensor | None:
            if layer == 0:
                if self.embed is not None:
                    x = self.embed.to(x.dtype)
                self.chunks.append(x[None])
            self.resid[layer] = x
            return x

        return hook

    def qkv(self, layer: int, part: int) -> Callable[[Tensor, str], Tensor | None]:
        arch, graph = self.arch, self.graph

        def hook(value: Tensor, name: str) -> Tensor | None:  # value [batch, pos, heads, d_head]
            if layer not in self.head_inputs:
                dests = graph.head_dests(layer)
                if self._weights(dests) is None:
                    if not self.probe:
                        return None  # nothing rewired in this block: the model's own q, k, v
                    self.qkv_probes.setdefault(layer, []).append(len(self.probes))
                    self.qkv_values.setdefault(layer, []).append(value.detach())
                    if part == 2:
                        self.readers.append(
                            (dests.start, lambda grads, groups: self.head_grads(layer, grads, groups))
                        )
                    return value + self._add_probe(value)
                x = self._rewire(self.resid[layer], dests)  # [batch, pos, n_dests, d_model]
                normed = arch.attn_norms[layer](x)
                if graph.separate_qkv:
                    h, kv = graph.n_heads, graph.n_kv_heads
                    split = normed.split((h, kv, kv), dim=2)
                else:
                    split = (normed,) * 3
                self.head_inputs[layer] = split  # type: ignore[assignment]
            w = self.weight("w", layer, part)  # [heads, d_model, d_head]
            x_part = self.head_inputs[layer][part]  # [batch, pos, heads, d_model]
            out = torch.einsum("bphd,hde->bphe", x_part, w.to(x_part.dtype))
            return out + self.weight("b", layer, part).to(out.dtype)

        return hook

    def head_out(self, layer: int) -> Callable[[Tensor, str], None]:
        def hook(z: Tensor, name: str) -> None:  # z [batch, pos, head, d_head]
            w_o = self.weight("o", layer)  # [head, d_head, d_model]
            self.head_chunk[layer] = len(self.chunks)
            out = torch.einsum("bphe,hed->hbpd", z, w_o.to(z.dtype))
            self.chunks.append(out if self.arch.attn_scale == 1.0 else out * self.arch.attn_scale)

        return hook

    def post_attn(self, layer: int) -> Callable[[nn.Module, tuple, Tensor], None]:
        """Forward hook on a post-sublayer norm: scale this block's head outputs by its factor."""

        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            i = self.head_chunk[layer]
            scale = post_scale(args[0], output if isinstance(output, Tensor) else output[0])
            self.chunks[i] = self.chunks[i] * scale[None]

        return hook

    def mlp_out(self, x: Tensor, name: str) -> None:
        self.chunks.append(x[None])

    def reads(self, dest: int) -> Callable[[Tensor], Tensor]:
        """Pre-hook for the MLP or logits input: rewires that single destination."""

        def hook(x: Tensor) -> Tensor:
            if not self.probe and self._weights(slice(dest, dest + 1)) is None:
                return x
            flat = x.ndim == 2  # some models (OPT) flatten [batch * pos, d_model] around the MLP
            x3 = x.unflatten(0, self.resid[0].shape[:2]) if flat else x
            out = self._rewire(x3, slice(dest, dest + 1))[:, :, 0]
            return out.flatten(0, 1) if flat else out

        return hook

    def reads_normed(self, dest: int, layer: int) -> Callable[[Tensor], Tensor]:
        """Pre-hook on an MLP that reads the attention norm's output (parallel blocks sharing it):
        its input becomes the attention norm of its own rewired read of the block input."""

        def hook(x: Tensor) -> Tensor:
            if not self.probe and self._weights(slice(dest, dest + 1)) is None:
                return x
            read = self._rewire(self.resid[layer], slice(dest, dest + 1))[:, :, 0]
            return self.arch.attn_norms[layer](read)

        return hook


def forward(
    model: HookedModel,
    graph: ComputationalGraph,
    tokens: Tensor,
    *,
    alt: Tensor | None = None,
    patch: Tensor | None = None,
    probe: bool = False,
    embed: Tensor | None = None,
    record: bool = False,
) -> EdgeRun:
    """One forward with edges patched and/or destination inputs probed.

    Args:
        tokens: [batch, pos] token ids.
        alt: [n_sources, batch or 1, pos, d_model] source outputs to patch in (needed with `patch`).
        patch: [n_dests, n_sources] or [batch, n_dests, n_sources] weights in [0, 1]
            (`graph.dense(per_edge)`): 1 replaces the edge's contribution by the alt one.
        probe: add zero probes to every destination input; after `metric.backward()`,
            `run.grads(graph)` is dMetric/dinput [n_dests, batch, pos, d_model].
        embed: [batch, pos, d_model] replacement for the embedding output (block 0's input).
        record: return the source outputs of this run as `run.sources`.
    """
    if patch is not None and alt is None:
        raise InterpError("forward(patch=...) needs alt= (the source outputs to patch in)")
    state = _Forward(model, graph, alt, patch, probe, embed)
    arch = state.arch
    hooks: dict[str, Callable] = {}
    pre: list[tuple[nn.Module, Callable[[Tensor], Tensor]]] = []
    post: list[tuple[nn.Module, Callable]] = []
    sources = record or patch is not None  # source outputs are only needed to patch or to return
    for layer in range(graph.n_layers):
        prefix = f"blocks.{layer}"
        hooks[f"{prefix}.hook_resid_pre"] = state.resid_pre(layer)
        for part, kind in enumerate(("q", "k", "v")):
            hooks[f"{prefix}.attn.hook_{kind}"] = state.qkv(layer, part)
        if sources:
            hooks[f"{prefix}.attn.hook_z"] = state.head_out(layer)
            hooks[f"{prefix}.hook_mlp_out"] = state.mlp_out
            if arch.post_attn[layer] is not None:
                post.append((arch.post_attn[layer], state.post_attn(layer)))
        dest = graph.mlp_dest(layer)
        read = state.reads_normed(dest, layer) if arch.mlp_shares_attn_norm else state.reads(dest)
        pre.append((arch.mlp_reads[layer], read))
    pre.append((arch.final_norm, state.reads(graph.logits_dest)))
    with model.hooks(hooks), _pre_hooks(pre, post):
        logits = model(tokens)
    readers = [reader for _, reader in sorted(state.readers, key=lambda r: r[0])] if probe else []
    if probe and len(readers) != 2 * graph.n_layers + 1:
        raise InterpError(f"probed {len(readers)} destination groups, expected {2 * graph.n_layers + 1}")
    out_sources = torch.cat(state.chunks) if record else None
    return EdgeRun(logits, out_sources, state.probes, readers)
