"""Loading SAEs from the SAELens folder layout (`cfg.json` + `sae_weights.safetensors`).

Folders written by `SparseAutoencoder.save` carry our exact config under `metadata.interp` and load
back as the same architecture; folders written by SAELens (architectures `standard`, `topk`,
`jumprelu`, `gated`, `transcoder`, `jumprelu_transcoder`) load as the equivalent architecture here.
Weights are read with safetensors only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from interp.errors import InterpError
from saes.architectures import SparseAutoencoder, build
from saes.config import SAEConfig
from saes.format import SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME

logger = logging.getLogger(__name__)

# SAELens architecture -> (our architecture, is a transcoder)
_FROM_SAELENS: dict[str, tuple[str, bool]] = {
    "standard": ("relu", False),
    "topk": ("topk", False),
    "jumprelu": ("jumprelu", False),
    "gated": ("gated", False),
    "transcoder": ("relu", True),
    "jumprelu_transcoder": ("jumprelu", True),
}
_IDENTITY_NORMALIZATIONS = ("none", "expected_average_only_in")


def read_folder(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The parsed `cfg.json` and the weights of an SAE folder, with clear errors for broken folders."""
    path = Path(path)
    cfg_path, weights_path = path / SAE_CFG_FILENAME, path / SAE_WEIGHTS_FILENAME
    if not path.is_dir():
        raise InterpError(f"no SAE folder at {path}")
    missing = [p.name for p in (cfg_path, weights_path) if not p.is_file()]
    if missing:
        raise InterpError(
            f"{path} is not a complete SAE folder: missing {', '.join(missing)} "
            f"(expected {SAE_CFG_FILENAME} and {SAE_WEIGHTS_FILENAME})"
        )
    try:
        raw = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InterpError(f"{cfg_path} is not valid JSON ({exc}); the folder is corrupt") from exc
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InterpError(f"{weights_path} is corrupt or partial ({exc})") from exc
    return raw, state


def load(path: str | Path, *, device: str | torch.device = "cpu") -> SparseAutoencoder:
    """Load an SAE folder written here (`sae.save`), by SAELens, or a training checkpoint.

    Example:
        >>> sae = saes.load("out/my_sae")  # doctest: +SKIP
        >>> sae.encode(x)  # doctest: +SKIP
    """
    raw, state = read_folder(path)
    interp_meta = (raw.get("metadata") or {}).get("interp")
    if interp_meta:
        cfg = SAEConfig.from_dict(interp_meta["config"])
        sae = build(cfg)
        sae.load_saelens_state_dict(state, float(interp_meta["scale_in"]), float(interp_meta["scale_out"]))
    else:
        cfg, state = _config_from_saelens(raw, state)
        sae = build(cfg)
        sae.load_saelens_state_dict(state)
        logger.info("loaded SAELens %s SAE from %s as %s", raw.get("architecture"), path, cfg.arch)
    return sae.to(device).eval()


def _config_from_saelens(raw: dict[str, Any], state: dict[str, torch.Tensor]) -> tuple[SAEConfig, dict]:
    arch = raw.get("architecture", "standard")
    if arch not in _FROM_SAELENS:
        raise InterpError(
            f"SAELens architecture {arch!r} has no equivalent here; supported: {sorted(_FROM_SAELENS)}"
        )
    ours, transcoder = _FROM_SAELENS[arch]
    norm = raw.get("normalize_activations", "none")
    if norm not in _IDENTITY_NORMALIZATIONS:
        raise InterpError(
            f"SAELens normalize_activations={norm!r} is not supported; fold it into the weights first"
        )
    meta = raw.get("metadata") or {}
    state = dict(state)
    if raw.get("rescale_acts_by_decoder_norm"):
        # Fold the decoder norms into the encoder: identical activations, unit-norm-free decoding.
        norms = state["W_dec"].norm(dim=-1)  # [d_sae]
        state["W_enc"] = state["W_enc"] * norms
        state["b_enc"] = state["b_enc"] * norms
        state["W_dec"] = state["W_dec"] / norms[:, None]
    hook_in = meta.get("hook_name") or raw.get("hook_name") or ""
    hook_out = meta.get("hook_name_out") or raw.get("hook_name_out")
    d_out = raw.get("d_out") if transcoder else None
    cfg = SAEConfig(
        arch=ours,
        d_in=int(raw["d_in"]),
        d_sae=int(raw["d_sae"]),
        k=int(raw["k"]) if ours == "topk" else None,
        d_out=int(d_out) if d_out is not None else None,
        hook_in=hook_in,
        hook_out=hook_out if hook_out and hook_out != hook_in else None,
        model_name=meta.get("model_name") or raw.get("model_name") or "",
        normalize="none",
        apply_b_dec_to_input=bool(raw.get("apply_b_dec_to_input", True)) and not transcoder,
        dtype=raw.get("dtype", "float32") if raw.get("dtype") in ("float32", "float64") else "float32",
    )
    return cfg, state
