"""TransformerLens-style weight access, read from the adapter's `Architecture` (never copied tables).

Shapes (TransformerLens's conventions; `x @ W` maps the input space to the output space):

| name | per layer | stacked property |
|---|---|---|
| `W_E` / `W_pos` / `W_U`, `b_U` | - | [d_vocab, d_model] / [n_ctx, d_model] / [d_model, d_vocab], [d_vocab] |
| `W_Q`, `W_K`, `W_V` | [n_heads, d_model, d_head] | [n_layers, n_heads, d_model, d_head] |
| `b_Q`, `b_K`, `b_V` | [n_heads, d_head] | [n_layers, n_heads, d_head] |
| `W_O`, `b_O` | [n_heads, d_head, d_model], [d_model] | [n_layers, ...] |
| `W_in`, `W_gate`, `b_in`, `b_gate` | [d_model, d_mlp], [d_mlp] | [n_layers, ...] |
| `W_out`, `b_out` | [d_mlp, d_model], [d_model] | [n_layers, ...] |

Keys and values are expanded to one per query head under grouped-query attention (head h reads
key/value head h // (n_heads / n_kv_heads), as Hugging Face's `repeat_kv` does). A bias the model
does not have is zeros. Results are views of the parameters where the layout allows, and stay in the
autograd graph; to edit a weight, write to the module (`model.module(path)`).
"""

from __future__ import annotations

import torch
from torch import nn

from interp.adapters.layouts import fused_part
from interp.adapters.spec import Architecture, Proj
from interp.errors import InterpError

ATTN = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")
MLP = ("W_in", "W_gate", "W_out", "b_in", "b_gate", "b_out")
GLOBAL = ("W_E", "W_pos", "W_U", "b_U")
NAMES = GLOBAL + ATTN + MLP


def _linear(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(W [d_in, d_out], b [d_out] | None) of an nn.Linear or a GPT-2 Conv1D."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise InterpError(f"{type(module).__name__} is not a linear map with a 2-d weight")
    w = weight if type(module).__name__ == "Conv1D" else weight.T
    return w, getattr(module, "bias", None)


class WeightAccess:
    """Mixed into `HookedModel`: needs `arch`, `cfg` and `module(path, layer)`."""

    arch: Architecture

    # -- the one entry point ------------------------------------------------------------------
    def weight(self, name: str, layer: int | None = None, head: int | None = None) -> torch.Tensor:
        """Weight `name` (see the table in `interp.weights`) of block `layer`, optionally one `head`.

        >>> model.weight("W_O", layer=1, head=2).shape    # [d_head, d_model]
        """
        if name not in NAMES:
            raise InterpError(f"unknown weight {name!r}; available: {', '.join(NAMES)}")
        if name in GLOBAL:
            if layer is not None or head is not None:
                raise InterpError(f"{name} is not per layer: call model.weight({name!r}) with no layer/head")
            return getattr(self, name)
        n_layers = self.cfg.n_layers
        if layer is None or not isinstance(layer, int) or not -n_layers <= layer < n_layers:
            raise InterpError(
                f"{name}: layer {layer!r} out of range: the model has {n_layers} layers (0..{n_layers - 1})"
            )
        layer %= n_layers
        if head is not None and name in MLP:
            raise InterpError(f"{name} is an MLP weight: it has no heads")
        if head is not None and name == "b_O":
            raise InterpError("b_O belongs to the whole output projection, not to a head")
        if head is not None:
            n_heads = self.cfg.n_heads
            if not isinstance(head, int) or not -n_heads <= head < n_heads:
                raise InterpError(
                    f"{name}: head {head!r} out of range: the model has {n_heads} heads (0..{n_heads - 1})"
                )
        value = self._attn_weight(name, layer) if name in ATTN else self._mlp_weight(name, layer)
        return value if head is None else value[head]

    # -- attention ----------------------------------------------------------------------------
    def _proj(self, proj: Proj, layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return _linear(self.module(proj.path, layer))

    def _attn_weight(self, name: str, layer: int) -> torch.Tensor:
        arch, c = self._arch_or_raise(), self.cfg
        if name in ("W_O", "b_O"):
            w, b = self._proj(arch.o, layer)  # [head * d_head, d_model]
            if name == "W_O":
                return w.unflatten(0, (c.n_heads, c.d_head))
            return b if b is not None else w.new_zeros(w.shape[1])
        kind = name[-1]
        proj = {"Q": arch.q, "K": arch.k, "V": arch.v}[kind]
        w, b = self._proj(proj, layer)  # [d_model, features], [features]
        n = c.n_heads if kind == "Q" else c.n_kv_heads
        if proj.layout is None:
            get = lambda t: t.unflatten(-1, (n, c.d_head))  # noqa: E731
        else:
            get, _ = fused_part(proj.layout, proj.part or 0, c.n_heads, c.n_kv_heads, c.d_head)
        if name.startswith("W"):
            value = get(w).movedim(-2, 0)  # [head, d_model, d_head]
        else:
            value = get(b) if b is not None else w.new_zeros(n, c.d_head)  # [head, d_head]
        if kind != "Q" and c.n_kv_heads != c.n_heads:
            value = value.repeat_interleave(c.n_heads // c.n_kv_heads, dim=0)
        return value

    # -- MLP ----------------------------------------------------------------------------------
    def _mlp_weight(self, name: str, layer: int) -> torch.Tensor:
        arch = self._arch_or_raise()
        proj = {"in": arch.mlp_in, "gate": arch.mlp_gate, "out": arch.mlp_out}[name.split("_", 1)[1]]
        if proj is None:
            why = "is not gated" if arch.mlp_out is not None else "routes tokens to fused experts (MoE)"
            raise InterpError(f"{name}: this {self.cfg.family} model's MLP {why}, so it has no {name}")
        w, b = self._proj(proj, layer)
        if proj.layout is not None:
            get, _ = fused_part(
                proj.layout, proj.part or 0, self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.d_head
            )
            w, b = get(w), None if b is None else get(b)
        if name.startswith("W"):
            return w
        return b if b is not None else w.new_zeros(w.shape[1])

    def _arch_or_raise(self) -> Architecture:
        arch = self.adapter.arch
        if arch is None:
            raise InterpError(f"the {self.cfg.family} table has no Architecture: weight access needs one")
        return arch

    def _stack(self, name: str) -> torch.Tensor:
        return torch.stack([self.weight(name, layer) for layer in range(self.cfg.n_layers)])

    # -- embeddings ---------------------------------------------------------------------------
    @property
    def W_E(self) -> torch.Tensor:
        """Token embedding [d_vocab, d_model] (before any embedding multiplier, see `arch.embed_scale`)."""
        return self.module(self._arch_or_raise().embed).weight

    @property
    def W_pos(self) -> torch.Tensor:
        """Learned position embedding [n_ctx, d_model] (OPT's offset of 2 rows removed)."""
        path = self._arch_or_raise().pos_embed
        if path is None:
            raise InterpError(
                f"{self.cfg.family} has no learned position embedding (positions: {self.arch.positional})"
            )
        module = self.module(path)
        return module.weight[getattr(module, "offset", 0) :]

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding [d_model, d_vocab] (before any logit multiplier, see `arch.logit_scale`)."""
        return self._lm_head().weight.T

    @property
    def b_U(self) -> torch.Tensor:
        head = self._lm_head()
        bias = getattr(head, "bias", None)
        return bias if bias is not None else head.weight.new_zeros(head.weight.shape[0])

    def scale_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Apply the family's logit multiplier and soft cap to `lm_head` outputs (identity for most)."""
        arch = self.adapter.arch
        if arch is None:
            return logits
        if arch.logit_scale != 1.0:
            logits = logits * arch.logit_scale
        if arch.logit_softcap:
            logits = torch.tanh(logits / arch.logit_softcap) * arch.logit_softcap
        return logits

    def _lm_head(self) -> nn.Module:
        get = getattr(self.hf_model, "get_output_embeddings", None)
        head = get() if get is not None else None
        if head is None:
            raise InterpError(f"{type(self.hf_model).__name__} has no LM head (load the *ForCausalLM class)")
        return head

    # -- stacked over layers, TransformerLens-style ---------------------------------------------
    W_Q = property(lambda self: self._stack("W_Q"), doc="[n_layers, n_heads, d_model, d_head]")
    W_K = property(lambda self: self._stack("W_K"), doc="[n_layers, n_heads, d_model, d_head] (GQA expanded)")
    W_V = property(lambda self: self._stack("W_V"), doc="[n_layers, n_heads, d_model, d_head] (GQA expanded)")
    W_O = property(lambda self: self._stack("W_O"), doc="[n_layers, n_heads, d_head, d_model]")
    b_Q = property(lambda self: self._stack("b_Q"), doc="[n_layers, n_heads, d_head]")
    b_K = property(lambda self: self._stack("b_K"), doc="[n_layers, n_heads, d_head] (GQA expanded)")
    b_V = property(lambda self: self._stack("b_V"), doc="[n_layers, n_heads, d_head] (GQA expanded)")
    b_O = property(lambda self: self._stack("b_O"), doc="[n_layers, d_model]")
    W_in = property(lambda self: self._stack("W_in"), doc="[n_layers, d_model, d_mlp]")
    W_gate = property(lambda self: self._stack("W_gate"), doc="[n_layers, d_model, d_mlp]")
    W_out = property(lambda self: self._stack("W_out"), doc="[n_layers, d_mlp, d_model]")
    b_in = property(lambda self: self._stack("b_in"), doc="[n_layers, d_mlp]")
    b_gate = property(lambda self: self._stack("b_gate"), doc="[n_layers, d_mlp]")
    b_out = property(lambda self: self._stack("b_out"), doc="[n_layers, d_model]")
