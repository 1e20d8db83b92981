"""The replacement model: the real forward with each MLP replaced by its transcoders, attention patterns
and norm denominators frozen from one original run, and error nodes closing the gap.

1. `ReplacementModel.trace(tokens)` runs the original model once and records attention patterns
   (`blocks.{l}.attn.hook_pattern`), every norm's denominator (`circuits.attribution.norms`), the MLP
   inputs and outputs (`hook_resid_mid`, `hook_mlp_out`), the transcoder features, and the error
   `mlp_out - reconstruction` per layer and position.
2. `replacement_logits(snap)` reruns the real model with patterns and norms frozen and each
   `hook_mlp_out` replaced by the transcoders' reconstruction from the live MLP input plus the recorded
   error: on the traced prompt it reproduces the original logits.
3. `linear_logits(snap, ...)` is the linearised model the graph describes: features are held at their
   recorded activations (sources), so every residual-stream quantity is an affine function of the
   token embeddings, feature activations and errors.

Nothing of the model's forward is re-implemented: everything runs through the hook layer and PyTorch
hooks on the real norm modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.attribution import norms
from interp.errors import InterpError
from saes.transcoder_set import HOOK_IN, HOOK_OUT, TranscoderSet, check_decomposable

HookFn = Callable[[Tensor, str], "Tensor | None"]


class TranscoderMismatchError(InterpError):
    """The transcoder set does not fit the model (layers or widths)."""


@dataclass
class Snapshot:
    """What one original run of a prompt leaves for the replacement model (batch of 1)."""

    tokens: Tensor  # [1, pos]
    logits: Tensor  # [1, pos, vocab]
    patterns: dict[int, Tensor]  # layer -> [1, head, q_pos, k_pos]
    scales: norms.NormScales
    embed: Tensor  # [pos, d_model]: blocks.0.hook_resid_pre (token + position embeddings)
    resid_mid: dict[int, Tensor]  # layer -> [pos, d_model]
    mlp_out: dict[int, Tensor]  # layer -> [pos, d_model]
    acts: dict[int, Tensor]  # layer -> [pos, n_features]
    errors: dict[int, Tensor]  # layer -> [pos, d_model]: mlp_out - reconstruction

    @property
    def n_pos(self) -> int:
        return self.tokens.shape[1]


class ReplacementModel:
    """A hooked model plus a transcoder set covering its layers.

    >>> rm = ReplacementModel(interp.load("shakespeare-tiny"), TranscoderSet.load("out/tc"))  # doctest: +SKIP
    >>> snap = rm.trace(rm.tokens("To be, or not"))  # doctest: +SKIP
    >>> (rm.replacement_logits(snap) - snap.logits).abs().max() < 1e-4  # doctest: +SKIP
    """

    def __init__(self, model, transcoders: TranscoderSet) -> None:
        self.model = model
        self.tc = transcoders
        check_compatible(model, transcoders)
        self.n_layers = model.cfg.n_layers

    def tokens(self, prompt: str | Tensor) -> Tensor:
        """Token ids [1, pos], checked against the model's context length."""
        ids, _ = self.model.to_tokens(prompt)
        if ids.shape[0] != 1:
            raise InterpError("attribution traces one prompt at a time")
        n_ctx = context_length(self.model)
        if n_ctx is not None and ids.shape[1] > n_ctx:
            raise InterpError(
                f"the prompt has {ids.shape[1]} tokens but the model's context is {n_ctx}; shorten the prompt"
            )
        return ids

    # ---- 1. the original run -----------------------------------------------------------------
    @torch.no_grad()
    def trace(self, tokens: Tensor) -> Snapshot:
        names = ["blocks.0.hook_resid_pre"]
        for lyr in range(self.n_layers):
            names += [f"blocks.{lyr}.attn.hook_pattern", HOOK_IN.format(l=lyr), HOOK_OUT.format(l=lyr)]
        scales = norms.NormScales()
        with norms.record(self.model.hf_model, scales):
            logits, cache = self.model.run_with_cache(tokens, names=names)
        resid_mid = {lyr: cache[HOOK_IN.format(l=lyr)][0] for lyr in range(self.n_layers)}
        mlp_out = {lyr: cache[HOOK_OUT.format(l=lyr)][0] for lyr in range(self.n_layers)}
        acts = {lyr: self.tc.encode(lyr, resid_mid[lyr]) for lyr in range(self.n_layers)}
        errors = {lyr: mlp_out[lyr] - self.tc.reconstruct(lyr, acts) for lyr in range(self.n_layers)}
        return Snapshot(
            tokens=tokens,
            logits=logits.detach(),
            patterns={lyr: cache[f"blocks.{lyr}.attn.hook_pattern"] for lyr in range(self.n_layers)},
            scales=scales,
            embed=cache["blocks.0.hook_resid_pre"][0],
            resid_mid=resid_mid,
            mlp_out=mlp_out,
            acts=acts,
            errors=errors,
        )

    # ---- frozen forward passes -----------------------------------------------------------------
    @contextlib.contextmanager
    def frozen(
        self,
        snap: Snapshot,
        hooks: Mapping[str, HookFn] | None = None,
        *,
        attention: bool = True,
        norms_: bool = True,
    ) -> Iterator[None]:
        """Inside the block, forwards of `snap.tokens` (any batch of copies) run with attention patterns
        and norm denominators frozen at their recorded values (each can be left live), plus `hooks`."""

        def pattern(layer: int) -> HookFn:
            return lambda p, name: snap.patterns[layer].to(p.dtype).expand_as(p)

        frozen_hooks = (
            {f"blocks.{lyr}.attn.hook_pattern": pattern(lyr) for lyr in range(self.n_layers)}
            if attention
            else {}
        )
        norm_ctx = norms.frozen(self.model.hf_model, snap.scales) if norms_ else contextlib.nullcontext()
        with norm_ctx, self.model.hooks({**frozen_hooks, **(hooks or {})}):
            yield

    def replacement_logits(self, snap: Snapshot) -> Tensor:
        """Logits [1, pos, vocab] of the replacement model (live transcoders + recorded errors)."""
        acts: dict[int, Tensor] = {}

        def read(layer: int) -> HookFn:
            def fn(x: Tensor, name: str) -> None:
                acts[layer] = self.tc.encode(layer, x[0])

            return fn

        def write(layer: int) -> HookFn:
            return lambda y, name: (self.tc.reconstruct(layer, acts) + snap.errors[layer])[None].to(y.dtype)

        hooks = {}
        for lyr in range(self.n_layers):
            hooks[HOOK_IN.format(l=lyr)] = read(lyr)
            hooks[HOOK_OUT.format(l=lyr)] = write(lyr)
        with torch.no_grad(), self.frozen(snap, hooks):
            return self.model(snap.tokens)

    def mlp_sources(
        self,
        snap: Snapshot,
        acts: Mapping[int, Tensor] | None = None,
        errors: Mapping[int, Tensor] | None = None,
    ) -> dict[int, Tensor]:
        """Each layer's MLP output [pos, d_model] in the linear model, from feature activations and errors
        (the recorded ones unless given)."""
        acts = snap.acts if acts is None else acts
        errors = snap.errors if errors is None else errors
        return {lyr: self.tc.reconstruct(lyr, acts) + errors[lyr] for lyr in range(self.n_layers)}

    def linear_run(
        self, snap: Snapshot, mlp_out: Mapping[int, Tensor], embed: Tensor | None = None
    ) -> tuple[Tensor, dict[int, Tensor]]:
        """Logits [1, pos, vocab] and MLP inputs {layer: [pos, d_model]} of the frozen linear model
        whose MLP outputs are `mlp_out` and whose embeddings are `embed` (recorded unless given)."""
        mids: dict[int, Tensor] = {}
        hooks: dict[str, HookFn] = {
            "blocks.0.hook_resid_pre": lambda x, name: (snap.embed if embed is None else embed)[None].to(
                x.dtype
            )
        }
        for lyr in range(self.n_layers):
            hooks[HOOK_IN.format(l=lyr)] = lambda x, name, lyr=lyr: mids.__setitem__(lyr, x[0].detach())
            hooks[HOOK_OUT.format(l=lyr)] = lambda y, name, lyr=lyr: mlp_out[lyr][None].to(y.dtype)
        with torch.no_grad(), self.frozen(snap, hooks):
            logits = self.model(snap.tokens)
        return logits, mids


def context_length(model) -> int | None:
    cfg = model.hf_model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, name, None)
        if value:
            return int(value)
    return None


def check_compatible(model, tset: TranscoderSet) -> None:
    """Refuse a transcoder set that does not match the model, and models that cannot be frozen exactly."""
    check_decomposable(model)
    if getattr(model.hf_model.config, "final_logit_softcapping", None):
        raise norms.UnfreezableModelError(
            "the model soft-caps its logits (a nonlinearity after the last norm); attribution graphs need "
            "logits linear in the residual stream"
        )
    norms.norm_modules(model.hf_model)  # raises for norms outside the table
    cfg = model.cfg
    if tset.n_layers != cfg.n_layers:
        raise TranscoderMismatchError(
            f"the transcoder set has {tset.n_layers} layers but the model has {cfg.n_layers}; train a set "
            "for this model (`interp sae train-transcoders MODEL --out DIR`)"
        )
    if tset.d_model != cfg.d_model:
        raise TranscoderMismatchError(
            f"the transcoders read width {tset.d_model} but the model's d_model is {cfg.d_model}; they were "
            "trained on another model"
        )
