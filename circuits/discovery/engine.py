"""Edge-level forward passes: every destination reads its own copy of the residual stream.

The input of destination d (a head, one q/k/v input of a head, an MLP, or the logits) is the sum
of the outputs of every source upstream of it. To patch edge s -> d, d reads

    input_d = actual_d + sum_s w[d, s] * (alt_s - out_s) + probe_d

where `actual_d` is the residual stream d would read anyway, `out_s` the source's output in this
run, `alt_s` its output under the ablation (a corrupted run, a batch mean, ...), `w` in [0, 1] the
patch weight of the edge (1 = edge removed), and `probe_d` an optional zero tensor whose gradient is
dMetric/dinput_d (what EAP needs). Nothing else in the model changes: the residual stream itself
keeps its value, only the reads differ.

A block whose heads are not patched is not rewired even when probed: the heads read the block
input x through the attention norm and their slice of the qkv projection, so their input gradients
come after the backward from the gradient at the fused q|k|v output g:
dMetric/dinput_h = vjp of the norm at x applied to W_h g_h (`_Forward.head_grads`), which costs a
little elementwise work instead of a per-head forward and backward through the norm and projection.

How the reads are rewired on a GPT-2-family model (`WIRING`):
  1. `blocks.{l}.hook_resid_pre` records the block input (for l = 0 also the `embed` source, which
     `embed=` may replace, e.g. for integrated gradients along interpolated inputs);
  2. `attn.hook_q/k/v` are recomputed per head from per-head inputs [batch, pos, head, d_model]:
     ln_1, then that head's slice of the qkv projection (only in blocks whose heads are patched,
     so an unpatched run is the model's own forward, bitwise; a probed unpatched block keeps the
     fused q|k|v output `attn.c_attn` to differentiate at);
  3. `attn.hook_z` through each head's slice of the output projection gives the head outputs;
  4. a pre-hook on `ln_2` rewrites the MLP's input and one on `ln_f` the logits' input (the
     residual stream is untouched); `hook_mlp_out` is the MLP source.
Every hook is removed on every exit path.

    >>> run = forward(model, graph, tokens, record=True)          # the model's own forward
    >>> run.sources.shape                                         # [n_sources, batch, pos, d_model]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from circuits.discovery.compgraph import ComputationalGraph
from interp import HookedModel
from interp.errors import InterpError


@dataclass(frozen=True)
class Wiring:
    """Where one architecture family keeps what the edge-level forward needs (paths relative to the
    base model; `{l}` is the block index)."""

    block: str
    attn_norm: str
    mlp_norm: str
    final_norm: str
    qkv: Callable[[nn.Module, int, int], tuple[Tensor, Tensor]]
    """(block, n_heads, d_head) -> W [d_model, 3, head, d_head], b [3, head, d_head]."""
    w_out: Callable[[nn.Module, int, int], Tensor]
    """(block, n_heads, d_head) -> W_O [head, d_head, d_model] (the output projection's bias is not a head's)."""
    qkv_out: str
    """The module whose output is the fused q, k, v [batch, pos, 3 * head * d_head], laid out as `qkv`'s W."""


def _gpt2_qkv(block: nn.Module, n_heads: int, d_head: int) -> tuple[Tensor, Tensor]:
    attn = block.attn.c_attn  # Conv1D: weight [d_model, 3 * head * d_head]
    return attn.weight.view(-1, 3, n_heads, d_head), attn.bias.view(3, n_heads, d_head)


def _gpt2_out(block: nn.Module, n_heads: int, d_head: int) -> Tensor:
    return block.attn.c_proj.weight.view(n_heads, d_head, -1)  # Conv1D: [head * d_head, d_model]


WIRING: dict[str, Wiring] = {
    "gpt2": Wiring("h.{l}", "h.{l}.ln_1", "h.{l}.ln_2", "ln_f", _gpt2_qkv, _gpt2_out, "h.{l}.attn.c_attn"),
}


def wiring(model: HookedModel) -> Wiring:
    """The `Wiring` row for `model`'s family, or an `InterpError` saying how to add one."""
    family = model.cfg.family
    if family not in WIRING:
        raise InterpError(
            f"edge-level circuit discovery supports the families {', '.join(WIRING)}; this model is {family!r}. "
            "Add a Wiring row (block, norms, per-head qkv and output weights) in circuits/discovery/engine.py"
        )
    return WIRING[family]


@dataclass
class EdgeRun:
    """What one edge-level forward produced."""

    logits: Tensor  # [batch, pos, vocab]
    sources: Tensor | None = None  # [n_sources, batch, pos, d_model] when recorded
    probes: list[Tensor] = field(default_factory=list)  # per destination group, when probing
    to_dests: list[Callable[[Tensor], Tensor]] = field(default_factory=list)
    """Per probe: its gradient -> dvalue/dinput of its destinations [n, batch, pos, d_model]."""

    def grads(self, graph: ComputationalGraph, value: Tensor, groups: int = 1) -> Tensor:
        """dvalue/dinput of every destination [n_dests, batch, pos, d_model], for a run made with
        `probe=True` (`value` is a scalar computed from `logits`, e.g. the metric). Uses
        `torch.autograd.grad`, so the model's parameters collect no `.grad`. With `groups` > 1 the
        batch is `groups` stacked copies and their gradients are summed: [n_dests, batch / groups, ...]."""
        if not self.probes:
            raise InterpError("grads() needs a run made with probe=True")
        grads = torch.autograd.grad(value, self.probes, allow_unused=True)
        parts = []
        for probe, grad, to_dests in zip(self.probes, grads, self.to_dests, strict=True):
            part = to_dests(torch.zeros_like(probe) if grad is None else grad)  # [n, batch, pos, d_model]
            parts.append(part.unflatten(1, (groups, -1)).sum(1) if groups > 1 else part)
        out = torch.cat(parts)
        if out.shape[0] != len(graph.dests):
            raise InterpError(f"expected {len(graph.dests)} destination gradients, got {out.shape[0]}")
        return out


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
        self.model, self.graph, self.wiring = model, graph, wiring(model)
        self.alt, self.patch, self.probe, self.embed = alt, patch, probe, embed
        cfg = model.cfg
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.chunks: list[Tensor] = []  # source outputs in order, each [n, batch, pos, d_model]
        self.resid: dict[int, Tensor] = {}  # block -> its input [batch, pos, d_model]
        self.head_inputs: dict[int, tuple[Tensor, Tensor, Tensor]] = {}  # block -> normalised q/k/v inputs
        self.probes: list[Tensor] = []
        self.to_dests: list[Callable[[Tensor], Tensor]] = []
        base, layers = model.base_model, range(cfg.n_layers)
        self.blocks = [base.get_submodule(self.wiring.block.format(l=i)) for i in layers]
        self.attn_norms = [base.get_submodule(self.wiring.attn_norm.format(l=i)) for i in layers]
        self.qkv_outs = [base.get_submodule(self.wiring.qkv_out.format(l=i)) for i in layers]

    # -- the pieces ---------------------------------------------------------------------------------
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

    def _probe(self, like: Tensor) -> Tensor:
        """A zero probe on destination inputs [batch, pos, n_dests, d_model]."""
        probe = torch.zeros_like(like, requires_grad=True)
        self.probes.append(probe)
        self.to_dests.append(lambda grad: grad.movedim(2, 0))  # [b,p,n,d] -> [n,b,p,d]
        return probe

    @torch.no_grad()  # a result, not part of any graph (torch.func.vjp still differentiates the norm)
    def head_grads(self, layer: int, grad: Tensor) -> Tensor:
        """Input gradients of an unpatched block's head destinations [n_dests, batch, pos, d_model]
        from the gradient at its fused q|k|v output [batch, pos, 3 * head * d_head]."""
        w, _ = self.wiring.qkv(self.blocks[layer], self.n_heads, self.d_head)  # [d_model, 3, head, d_head]
        grad = grad.unflatten(-1, (3, self.n_heads, self.d_head))
        w = w.to(grad.dtype)
        if self.graph.separate_qkv:  # dests: q heads, k heads, v heads
            normed = torch.einsum("bpthe,dthe->thbpd", grad, w).flatten(0, 1)
        else:
            normed = torch.einsum("bpthe,dthe->hbpd", grad, w)
        _, vjp = torch.func.vjp(self.attn_norms[layer], self.resid[layer].detach())
        return torch.vmap(vjp)(normed)[0]

    def _rewire(self, x: Tensor, dests: slice) -> Tensor:
        """x [batch, pos, d_model] as read by `dests`: [batch, pos, n_dests, d_model]."""
        delta = self._delta(dests)
        width = dests.stop - dests.start
        out = x[:, :, None, :].expand(*x.shape[:2], width, x.shape[-1])
        if delta is not None:
            out = out + delta
        if self.probe:
            out = out + self._probe(out)
        return out

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
        def hook(value: Tensor, name: str) -> Tensor | None:  # value [batch, pos, head, d_head]
            if layer not in self.head_inputs:
                dests = self.graph.head_dests(layer)
                if self._weights(dests) is None:
                    return None  # nothing rewired in this block: the model's own q, k, v
                x = self._rewire(self.resid[layer], dests)  # [batch, pos, (3) head, d_model]
                normed = self.attn_norms[layer](x)
                split = normed.split(self.n_heads, dim=2) if self.graph.separate_qkv else (normed,) * 3
                self.head_inputs[layer] = split  # type: ignore[assignment]
            w, b = self.wiring.qkv(self.blocks[layer], self.n_heads, self.d_head)
            x_part = self.head_inputs[layer][part]  # [batch, pos, head, d_model]
            return torch.einsum("bphd,dhe->bphe", x_part, w[:, part]) + b[part]

        return hook

    def qkv_out(self, layer: int) -> Callable[[nn.Module, tuple, Tensor], Tensor | None]:
        """Forward hook on the fused q|k|v module: a probed block that was not rewired is
        differentiated at its output (runs after the `hook_q/k/v` callbacks, which rewire)."""

        def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
            if layer in self.head_inputs:
                return None
            replaced = None
            if not output.requires_grad:  # frozen weights and an input without gradient (block 0)
                output = replaced = output.detach().requires_grad_()
            self.probes.append(output)
            self.to_dests.append(lambda grad: self.head_grads(layer, grad))
            return replaced

        return hook

    def head_out(self, layer: int) -> Callable[[Tensor, str], None]:
        def hook(z: Tensor, name: str) -> None:  # z [batch, pos, head, d_head]
            w_o = self.wiring.w_out(self.blocks[layer], self.n_heads, self.d_head)
            self.chunks.append(torch.einsum("bphe,hed->hbpd", z, w_o))

        return hook

    def mlp_out(self, x: Tensor, name: str) -> None:
        self.chunks.append(x[None])

    def reads(self, dest: int) -> Callable[[Tensor], Tensor]:
        """Pre-hook for the MLP or logits input: rewires that single destination."""

        def hook(x: Tensor) -> Tensor:
            if not self.probe and self._weights(slice(dest, dest + 1)) is None:
                return x
            return self._rewire(x, slice(dest, dest + 1))[:, :, 0]

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
    hooks: dict[str, Callable] = {}
    pre: list[tuple[nn.Module, Callable[[Tensor], Tensor]]] = []
    base = model.base_model
    for layer in range(graph.n_layers):
        prefix = f"blocks.{layer}"
        hooks[f"{prefix}.hook_resid_pre"] = state.resid_pre(layer)
        for part, kind in enumerate(("q", "k", "v")):
            hooks[f"{prefix}.attn.hook_{kind}"] = state.qkv(layer, part)
        if record or patch is not None:  # source outputs are only needed to patch or to return
            hooks[f"{prefix}.attn.hook_z"] = state.head_out(layer)
            hooks[f"{prefix}.hook_mlp_out"] = state.mlp_out
        pre.append(
            (base.get_submodule(state.wiring.mlp_norm.format(l=layer)), state.reads(graph.mlp_dest(layer)))
        )
    pre.append((base.get_submodule(state.wiring.final_norm), state.reads(graph.logits_dest)))
    post = [(state.qkv_outs[layer], state.qkv_out(layer)) for layer in range(graph.n_layers)] if probe else []
    with model.hooks(hooks), _pre_hooks(pre, post):  # after model.hooks: `qkv_out` sees the rewired q, k, v
        logits = model(tokens)
    sources = torch.cat(state.chunks) if record else None
    return EdgeRun(logits, sources, state.probes, state.to_dests)
