"""Transcoder sets: one transcoder per layer (MLP input -> MLP output), or a cross-layer transcoder.

A set reads `blocks.{l}.hook_resid_mid` (the residual stream the MLP reads, before its norm) and writes
`blocks.{l}.hook_mlp_out` (what the MLP adds to the residual stream) on every layer of a model. It is
trained from one activation pass with the ordinary `Trainer`, as one `clt_topk` / `clt_jumprelu` SAE
over the concatenated layers (see `saes.architectures.clt`).

Folder layout (`TranscoderSet.save`, read by `TranscoderSet.load`):

    DIR/transcoder_set.json      {"format": "interp-toolkit/transcoder-set", "version": 1,
                                  "kind": "per_layer" | "cross_layer", "n_layers": L, "d_model": D,
                                  "model_name": ..., "hook_in": "blocks.{l}.hook_resid_mid",
                                  "hook_out": "blocks.{l}.hook_mlp_out", "layers": ["blocks.0", ...]}
    DIR/blocks.{l}/cfg.json      per_layer: one SAELens-layout transcoder per layer
    DIR/blocks.{l}/sae_weights.safetensors      (loads alone with `saes.load`, and in SAELens for jumprelu)
    DIR/clt/cfg.json             cross_layer: the whole set as one `clt_*` SAE over the concatenated
    DIR/clt/sae_weights.safetensors             layers (W_enc block-diagonal, W_dec block upper-triangular)

>>> tset = train_transcoder_set(model, interp.data.shakespeare(), arch="topk", k=8, tokens=20_000)  # doctest: +SKIP
>>> tset.save("out/tc"); TranscoderSet.load("out/tc").n_layers  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from interp.errors import InterpError
from interp.io import atomic_write_json
from saes.architectures import REGISTRY, SparseAutoencoder, build
from saes.config import SAEConfig, TrainConfig
from saes.format import atomic_dir
from saes.io import load as load_sae
from saes.store import ActivationStore
from saes.trainer import Trainer

SET_FILENAME = "transcoder_set.json"
SET_FORMAT = "interp-toolkit/transcoder-set"
HOOK_IN = "blocks.{l}.hook_resid_mid"
HOOK_OUT = "blocks.{l}.hook_mlp_out"
Kind = Literal["per_layer", "cross_layer"]


class TranscoderSet(nn.Module):
    """Transcoders for every layer: `encode(l, x)` gives layer l's features, `decoder(l, l2)` where they write.

    Built from per-layer transcoders (`layers`, one SAE per layer) or one cross-layer SAE (`clt`).
    All directions are in the model's units.
    """

    def __init__(
        self,
        *,
        layers: list[SparseAutoencoder] | None = None,
        clt: SparseAutoencoder | None = None,
        model_name: str = "",
    ) -> None:
        super().__init__()
        if (layers is None) == (clt is None):
            raise InterpError(
                "a TranscoderSet takes either per-layer transcoders or one cross-layer transcoder"
            )
        self.layers = nn.ModuleList(layers or [])
        self.clt = clt
        self.model_name = model_name
        if clt is not None:
            self.n_layers = clt.cfg.knobs.n_layers
            self.d_model = clt.cfg.d_in // self.n_layers
            self._n_features = [clt.cfg.d_sae // self.n_layers] * self.n_layers
        else:
            self.n_layers = len(layers)
            self.d_model = layers[0].cfg.d_in
            self._n_features = [sae.cfg.d_sae for sae in layers]
            for lyr, sae in enumerate(layers):
                if sae.cfg.d_in != self.d_model or sae.cfg.out_dim != self.d_model:
                    raise InterpError(
                        f"transcoder {lyr} maps {sae.cfg.d_in} -> {sae.cfg.out_dim}; every layer of a set "
                        f"must map d_model -> d_model ({self.d_model})"
                    )

    @property
    def kind(self) -> Kind:
        return "cross_layer" if self.clt is not None and self.clt.cfg.knobs.cross_layer else "per_layer"

    def n_features(self, layer: int) -> int:
        return self._n_features[layer]

    # ---- inference ----------------------------------------------------------------------------
    def encode(self, layer: int, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... n_features"]:
        """Layer `layer`'s feature activations from its MLP input (`hook_resid_mid`)."""
        if self.clt is None:
            return self.layers[layer].encode(x)
        d, n = self.d_model, self._n_features[layer]
        padded = x.new_zeros(*x.shape[:-1], d * self.n_layers)  # other layers' blocks stay zero
        padded[..., layer * d : (layer + 1) * d] = x
        return self.clt.encode(padded)[..., layer * n : (layer + 1) * n]

    def encoder_directions(self, layer: int) -> Float[Tensor, "d_model n_features"]:
        """d(pre-activation of each feature) / d(MLP input): the encoder columns in model units."""
        sae = self.clt if self.clt is not None else self.layers[layer]
        w = (sae.W_enc * sae.scale_in).detach()
        if self.clt is None:
            return w
        d, n = self.d_model, self._n_features[layer]
        return w[layer * d : (layer + 1) * d, layer * n : (layer + 1) * n]

    def decoder(self, src: int, dst: int) -> Float[Tensor, "n_features d_model"] | None:
        """What one unit of each layer-`src` feature adds to layer `dst`'s MLP output (None if nothing)."""
        if self.clt is None:
            return self.layers[src].feature_directions() if src == dst else None
        if dst < src or (dst != src and not self.clt.cfg.knobs.cross_layer):
            return None
        d, n = self.d_model, self._n_features[src]
        return self.clt.feature_directions()[src * n : (src + 1) * n, dst * d : (dst + 1) * d]

    def decoder_bias(self, layer: int) -> Float[Tensor, " d_model"]:
        sae = self.clt if self.clt is not None else self.layers[layer]
        bias = (sae.b_dec / sae.scale_out).detach()
        return bias if self.clt is None else bias[layer * self.d_model : (layer + 1) * self.d_model]

    def reconstruct(self, layer: int, acts: dict[int, Tensor]) -> Float[Tensor, "... d_model"]:
        """Layer `layer`'s MLP output from the features of layers <= `layer` (`acts[l]`: [..., n_l])."""
        out = self.decoder_bias(layer)
        for src in range(layer + 1):
            dec = self.decoder(src, layer)
            if dec is not None:
                out = out + acts[src].to(dec.dtype) @ dec
        return out

    # ---- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the folder layout in the module docstring, atomically."""
        path = Path(path)
        meta = {
            "format": SET_FORMAT,
            "version": 1,
            "kind": self.kind,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "model_name": self.model_name,
            "hook_in": HOOK_IN,
            "hook_out": HOOK_OUT,
            "layers": [f"blocks.{lyr}" for lyr in range(self.n_layers)] if self.clt is None else ["clt"],
        }
        with atomic_dir(path) as tmp:
            if self.clt is not None:
                self.clt.save(tmp / "clt")
            for lyr, sae in enumerate(self.layers):
                sae.save(tmp / f"blocks.{lyr}")
            atomic_write_json(tmp / SET_FILENAME, meta)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> TranscoderSet:
        """Read a folder written by `save` (or hand-assembled: `blocks.{l}/` SAELens transcoders + the json)."""
        path = Path(path)
        meta_path = path / SET_FILENAME
        if not meta_path.is_file():
            raise InterpError(
                f"{path} is not a transcoder set: no {SET_FILENAME} (train one with `interp sae train-transcoders`)"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != SET_FORMAT:
            raise InterpError(f"{meta_path}: format {meta.get('format')!r} is not {SET_FORMAT!r}")
        if meta["layers"] == ["clt"]:
            return cls(clt=load_sae(path / "clt", device=device), model_name=meta.get("model_name", ""))
        layers = [load_sae(path / name, device=device) for name in meta["layers"]]
        for lyr, sae in enumerate(layers):
            want = (HOOK_IN.format(l=lyr), HOOK_OUT.format(l=lyr))
            if (sae.cfg.hook_in, sae.cfg.out_hook) != want:
                raise InterpError(
                    f"{path / meta['layers'][lyr]} maps {sae.cfg.hook_in} -> {sae.cfg.out_hook}; a transcoder "
                    f"set needs {want[0]} -> {want[1]} for layer {lyr}"
                )
        return cls(layers=layers, model_name=meta.get("model_name", ""))


def split_layers(clt: SparseAutoencoder, model_name: str = "") -> TranscoderSet:
    """Per-layer transcoders (`topk` or `jumprelu`, SAELens layout) from a block-diagonal `clt_*` SAE."""
    cfg = clt.cfg
    if cfg.knobs.cross_layer:
        raise InterpError("only a set trained with cross_layer=False splits into per-layer transcoders")
    n_layers = cfg.knobs.n_layers
    d, n = cfg.d_in // n_layers, cfg.d_sae // n_layers
    arch = cfg.arch.removeprefix("clt_")
    layers = []
    for lyr in range(n_layers):
        sub = dataclasses.replace(
            cfg,
            arch=arch,
            d_in=d,
            d_sae=n,
            d_out=d,
            k=None if cfg.k is None else cfg.k // n_layers,
            hook_in=HOOK_IN.format(l=lyr),
            hook_out=HOOK_OUT.format(l=lyr),
            knobs={name: getattr(cfg.knobs, name) for name in REGISTRY[arch].knobs.names()},
        )
        sae = build(sub)
        rows, feats = slice(lyr * d, (lyr + 1) * d), slice(lyr * n, (lyr + 1) * n)
        with torch.no_grad():
            sae.W_enc.copy_(clt.W_enc[rows, feats])
            sae.b_enc.copy_(clt.b_enc[feats])
            sae.W_dec.copy_(clt.W_dec[feats, rows])
            sae.b_dec.copy_(clt.b_dec[rows])
            sae.scale_in.copy_(clt.scale_in)
            sae.scale_out.copy_(clt.scale_out)
            if hasattr(clt, "log_threshold"):
                sae.log_threshold.copy_(clt.log_threshold[feats])
        layers.append(sae.eval())
    return TranscoderSet(layers=layers, model_name=model_name)


def concatenated_batches(batches: Any, n_layers: int) -> Any:
    """(inputs, targets) [batch, n_layers * d_model] from store batches keyed by hook name."""
    ins = [HOOK_IN.format(l=lyr) for lyr in range(n_layers)]
    outs = [HOOK_OUT.format(l=lyr) for lyr in range(n_layers)]
    for batch in batches:
        yield torch.cat([batch[h] for h in ins], -1), torch.cat([batch[h] for h in outs], -1)


def train_transcoder_set(
    model: Any,
    dataset: Any,
    *,
    arch: Literal["topk", "jumprelu"] = "topk",
    cross_layer: bool = False,
    expansion: int = 4,
    k: int = 16,
    tokens: int = 100_000,
    context_len: int = 64,
    train_cfg: TrainConfig | None = None,
    model_name: str = "",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> TranscoderSet:
    """Train transcoders on every layer of `model` at once from one activation pass over `dataset`.

    `k` is the number of active features per token per layer (TopK); `expansion` sets features per
    layer = expansion * d_model. `cross_layer=True` trains a cross-layer transcoder.

    >>> tset = train_transcoder_set(interp.load("shakespeare-tiny"), interp.data.shakespeare(), tokens=20_000)  # doctest: +SKIP
    """
    if arch not in ("topk", "jumprelu"):
        raise InterpError(f"transcoder sets use topk or jumprelu sparsity, got {arch!r}")
    n_layers, d_model = model.cfg.n_layers, model.cfg.d_model
    check_decomposable(model)
    tc = train_cfg or TrainConfig(lr=1e-3, batch_size=1024, total_tokens=tokens, progress=False)
    hooks = [HOOK_IN.format(l=lyr) for lyr in range(n_layers)] + [
        HOOK_OUT.format(l=lyr) for lyr in range(n_layers)
    ]
    store = ActivationStore(
        model,
        dataset,
        hooks,
        context_len=context_len,
        batch_size=tc.batch_size,
        cache_dir=cache_dir,
        seed=tc.seed,
    )
    cfg = SAEConfig(
        f"clt_{arch}",
        d_in=n_layers * d_model,
        d_sae=n_layers * expansion * d_model,
        d_out=n_layers * d_model,
        k=k * n_layers if arch == "topk" else None,
        n_layers=n_layers,
        cross_layer=cross_layer,
        hook_in="blocks.*.hook_resid_mid",
        hook_out="blocks.*.hook_mlp_out",
        model_name=model_name,
    )
    clt = Trainer(cfg, tc, device=device).fit(concatenated_batches(store.batches(tokens), n_layers))
    clt = clt.cpu().eval()
    return TranscoderSet(clt=clt, model_name=model_name) if cross_layer else split_layers(clt, model_name)


def check_decomposable(model: Any) -> None:
    """Refuse models whose MLP does not read `hook_resid_mid` and write `hook_mlp_out` in sequence."""
    if model.cfg.is_encoder or model.cfg.parallel_residual:
        what = "an encoder (post-norm)" if model.cfg.is_encoder else "a parallel-residual model"
        raise InterpError(
            f"{type(model.hf_model).__name__} is {what}: transcoder sets need a sequential pre-norm decoder "
            "(GPT-2, Llama-style, GPT-NeoX without parallel residual)"
        )
