"""The shared skeleton of every architecture: parameters, normalisation, encode/decode, loss, saving.

An architecture subclasses `SparseAutoencoder` and overrides a few small methods:

1. `_activate(pre, grad)`: the sparsifying nonlinearity on pre-activations [batch, d_sae]
   (its training-mode branch may allocate over the batch; see `batchtopk`).
2. optionally `_sparsity(acts, pre)` (a penalty), `_aux(...)` (an auxiliary loss) and
   `_reconstruction(acts, target)` (e.g. Matryoshka's nested prefixes).
3. optionally `_saelens_params` / `_load_saelens_params` when its parameters differ from SAELens's names.

Units: inputs are multiplied by the stored scalar `scale_in` (targets by `scale_out`) before the SAE
sees them, and reconstructions divided by `scale_out` on the way out, so `forward(x)` is in the model's
units while the loss and thresholds live in normalised units (mean norm sqrt(d_in)).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from jaxtyping import Float
from safetensors.torch import save_file
from torch import Tensor, nn

from interp.errors import ShapeError
from interp.io import atomic_write_json
from interp.names import HookPoint
from saes import sparse
from saes.architectures import ops
from saes.architectures.knobs import Knobs
from saes.format import DTYPES, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, atomic_dir

if TYPE_CHECKING:
    from saes.config import SAEConfig


@dataclass
class SAELoss:
    """Named terms of one loss evaluation. `total` is what `backward()` is called on."""

    total: Tensor
    """mse + sparsity_coef * sparsity + aux_coef * aux (scalar)."""
    mse: Tensor
    """Squared reconstruction error, summed over the output width, mean over the batch (normalised units)."""
    sparsity: Tensor
    """Unweighted sparsity penalty (L1 or L0); 0 for architectures whose sparsity is structural."""
    aux: Tensor
    """Unweighted auxiliary loss (AuxK, Zipf, gate reconstruction); 0 when it does not apply."""
    acts: Tensor
    """Detached latent activations [batch, d_sae], for dead-latent tracking and L0: a dense tensor, or a
    sparse COO tensor when the sparse TopK path produced it (read it with `saes.sparse.firing_counts`)."""

    def scalars(self) -> dict[str, float]:
        """The scalar terms as floats (for logging), plus `l0`, the mean active latents per token."""
        return {
            "loss": float(self.total.detach()),
            "mse": float(self.mse.detach()),
            "sparsity": float(self.sparsity.detach()),
            "aux": float(self.aux.detach()),
            "l0": float(sparse.mean_l0(self.acts)),
        }


class SparseAutoencoder(nn.Module):
    """Base class: a linear encoder, an architecture-specific sparsifier, and a linear decoder.

    Example:
        >>> import saes, torch
        >>> sae = saes.build(saes.SAEConfig("topk", d_in=16, d_sae=64, k=4))
        >>> x = torch.randn(8, 16)
        >>> sae(x).shape, (sae.encode(x) != 0).sum(-1).max().item() <= 4
        (torch.Size([8, 16]), True)
    """

    arch: ClassVar[str] = ""
    """Registry name."""
    knobs: ClassVar[type[Knobs]] = Knobs
    """The frozen dataclass of this architecture's own settings (`SAEConfig.knobs` holds one)."""
    saelens_architecture: ClassVar[str | None] = None
    """SAELens `architecture` that has the same inference behaviour, or None."""
    saelens_transcoder_architecture: ClassVar[str | None] = None
    """SAELens architecture for the transcoder form, or None when SAELens has none."""
    unit_norm_decoder: ClassVar[bool] = True
    """Whether the trainer keeps decoder rows at unit norm."""
    aux_weight: ClassVar[float | None] = None
    """Fixed weight of the auxiliary term (overrides the trainer's aux_coef), or None."""

    W_enc: nn.Parameter  # [d_in, d_sae]
    W_dec: nn.Parameter  # [d_sae, d_out]
    b_dec: nn.Parameter  # [d_out]
    scale_in: Tensor  # [] buffer
    scale_out: Tensor  # [] buffer

    def __init__(self, cfg: SAEConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        dtype = DTYPES[cfg.dtype]
        d_in, d_sae, d_out = cfg.d_in, cfg.d_sae, cfg.out_dim
        w_dec = torch.randn(d_sae, d_out, generator=generator, dtype=torch.float32)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        if d_out == d_in:
            w_enc = w_dec.T.clone()
        else:
            w_enc = torch.randn(d_in, d_sae, generator=generator) / d_in**0.5
        self.W_enc = nn.Parameter(w_enc.to(dtype).contiguous())
        self.W_dec = nn.Parameter(w_dec.to(dtype))
        self.b_dec = nn.Parameter(torch.zeros(d_out, dtype=dtype))
        self.register_buffer("scale_in", torch.ones((), dtype=torch.float32))
        self.register_buffer("scale_out", torch.ones((), dtype=torch.float32))
        self._init_encoder_bias()

    def _init_encoder_bias(self) -> None:
        self.b_enc = nn.Parameter(torch.zeros(self.cfg.d_sae, dtype=self.W_enc.dtype))

    # ---- the public interface -------------------------------------------------------------
    @property
    def subtracts_b_dec(self) -> bool:
        """Whether `b_dec` is subtracted from the (normalised) input before encoding."""
        return self.cfg.apply_b_dec_to_input and not self.cfg.is_transcoder

    def encode(
        self, x: Float[Tensor, "... d_in"], *, grad: Tensor | None = None
    ) -> Float[Tensor, "... d_sae"]:
        """Latent activations of `x` (model units). `grad` is only read by gradient-aware architectures."""
        lead = self._check_width(x, self.cfg.d_in, "input")
        x_n = x.reshape(-1, self.cfg.d_in).to(self.W_enc.dtype) * self.scale_in
        g = None if grad is None else grad.reshape(-1, self.cfg.out_dim).to(self.W_enc.dtype)
        acts, _ = self._encode_normalized(x_n, g)
        return acts.reshape(*lead, self.cfg.d_sae)

    def decode(self, z: Float[Tensor, "... d_sae"]) -> Float[Tensor, "... d_out"]:
        """Reconstruction (model units) from latent activations."""
        lead = self._check_width(z, self.cfg.d_sae, "latent")
        out = z.reshape(-1, self.cfg.d_sae).to(self.W_dec.dtype) @ self.W_dec + self.b_dec
        return (out / self.scale_out).reshape(*lead, self.cfg.out_dim)

    def forward(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_out"]:
        """The reconstruction `decode(encode(x))`."""
        return self.decode(self.encode(x))

    def loss(
        self,
        x: Float[Tensor, "batch d_in"],
        target: Float[Tensor, "batch d_out"] | None = None,
        *,
        sparsity_coef: float = 1.0,
        aux_coef: float = 0.0,
        dead_mask: Tensor | None = None,
        density: Tensor | None = None,
        aux_k: int | None = None,
        grad: Tensor | None = None,
    ) -> SAELoss:
        """Training loss on a batch (model units in; the loss itself is in normalised units).

        `target` defaults to `x` (transcoders pass the output hook's activations). `dead_mask` [d_sae]
        marks dead latents and `density` [d_sae] each latent's firing frequency, for auxiliary losses;
        `aux_k` is the number of latents in the auxiliary reconstruction (default d_in // 2);
        `grad` [batch, d_out] is the downstream gradient used by `gsae`.
        """
        x_n, t_n, g = self._normalized_batch(x, target, grad)
        acts, pre = self._encode_normalized(x_n, g)  # [batch, d_sae] each
        recon = acts @ self.W_dec + self.b_dec  # [batch, d_out]
        mse = self._reconstruction(acts, recon, t_n)
        sparsity = self._sparsity(acts, pre)
        residual = (t_n - recon).detach()
        aux = self._aux(pre, t_n, residual, dead_mask, density, aux_k or max(1, self.cfg.d_in // 2))
        if self.training:
            with torch.no_grad():
                self._update_statistics(pre, acts)
        aux_w = aux_coef if self.aux_weight is None else self.aux_weight
        total = mse + sparsity_coef * sparsity + aux_w * aux
        return SAELoss(total=total, mse=mse, sparsity=sparsity, aux=aux, acts=acts.detach())

    def _normalized_batch(
        self, x: Tensor, target: Tensor | None, grad: Tensor | None
    ) -> tuple[Float[Tensor, "batch d_in"], Float[Tensor, "batch d_out"], Tensor | None]:
        """Checked, flattened, normalised (input, target, downstream gradient) of a training batch."""
        target = x if target is None else target
        self._check_width(x, self.cfg.d_in, "input")
        self._check_width(target, self.cfg.out_dim, "target")
        x_n = x.reshape(-1, self.cfg.d_in).to(self.W_enc.dtype) * self.scale_in  # [batch, d_in]
        t_n = target.reshape(-1, self.cfg.out_dim).to(self.W_dec.dtype) * self.scale_out  # [batch, d_out]
        g = None if grad is None else grad.reshape(-1, self.cfg.out_dim).to(self.W_dec.dtype)
        return x_n, t_n, g

    def feature_directions(self) -> Float[Tensor, "d_sae d_out"]:
        """Decoder rows in model units: what adding one unit of each latent adds to the output hook."""
        return (self.W_dec / self.scale_out).detach()

    def save(self, path: str | Path) -> Path:
        """Write the SAELens layout (`cfg.json` + `sae_weights.safetensors`) atomically to folder `path`.

        Example:
            >>> sae.save("out/my_sae")  # doctest: +SKIP
            >>> saes.load("out/my_sae")  # doctest: +SKIP
        """
        path = Path(path)
        state = {k: v.detach().contiguous().cpu() for k, v in self.saelens_state_dict().items()}
        with atomic_dir(path) as tmp:
            save_file(state, str(tmp / SAE_WEIGHTS_FILENAME))
            atomic_write_json(tmp / SAE_CFG_FILENAME, self.saelens_config())
        return path

    # ---- hooks for subclasses -------------------------------------------------------------
    def _preacts(self, x_n: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        if self.subtracts_b_dec:
            x_n = x_n - self.b_dec
        return x_n @ self.W_enc + self.b_enc

    def _encode_normalized(self, x_n: Tensor, grad: Tensor | None) -> tuple[Tensor, Tensor]:
        """(acts, pre) on normalised inputs [batch, d_in]."""
        pre = self._preacts(x_n)
        return self._activate(pre, grad), pre

    def _activate(
        self, pre: Float[Tensor, "batch d_sae"], grad: Tensor | None
    ) -> Float[Tensor, "batch d_sae"]:
        raise NotImplementedError

    def _reconstruction(self, acts: Tensor, recon: Tensor, target: Tensor) -> Tensor:
        return (recon - target).pow(2).sum(-1).mean()

    def _sparsity(self, acts: Tensor, pre: Tensor) -> Tensor:
        return acts.new_zeros(())

    def _aux(
        self,
        pre: Tensor,
        target: Tensor,
        residual: Tensor,
        dead_mask: Tensor | None,
        density: Tensor | None,
        aux_k: int,
    ) -> Tensor:
        """AuxK by default: the top `aux_k` dead latents reconstruct the (detached) residual error."""
        if dead_mask is None:
            return pre.new_zeros(())
        return ops.auxk_loss(pre, residual, self.W_dec, dead_mask.float(), aux_k)

    def _update_statistics(self, pre: Tensor, acts: Tensor) -> None:
        """Update inference thresholds or other running statistics (training mode, no grad)."""

    # ---- SAELens layout -------------------------------------------------------------------
    def _saelens_params(self) -> dict[str, Tensor]:
        """Parameters under SAELens's names, in normalised units (before folding the scales)."""
        return {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec}

    def _load_saelens_params(self, state: dict[str, Tensor]) -> None:
        self._copy_into(state, ("W_enc", "b_enc", "W_dec", "b_dec"))

    def saelens_state_dict(self) -> dict[str, Tensor]:
        """SAELens weights with the normalisation folded in, so SAELens needs no scaling step."""
        state = {k: v.detach().clone() for k, v in self._saelens_params().items()}
        s_in, s_out = self.scale_in.to(state["W_enc"].dtype), self.scale_out.to(state["W_dec"].dtype)
        state["W_enc"] = state["W_enc"] * s_in
        state["W_dec"] = state["W_dec"] / s_out
        state["b_dec"] = state["b_dec"] / s_out
        return state

    def load_saelens_state_dict(
        self, state: dict[str, Tensor], scale_in: float = 1.0, scale_out: float = 1.0
    ) -> None:
        """Inverse of `saelens_state_dict`: unfold the scales and load the parameters."""
        state = dict(state)
        state["W_enc"] = state["W_enc"].float() / scale_in
        state["W_dec"] = state["W_dec"].float() * scale_out
        state["b_dec"] = state["b_dec"].float() * scale_out
        with torch.no_grad():
            self.scale_in.fill_(scale_in)
            self.scale_out.fill_(scale_out)
        self._load_saelens_params(state)

    def saelens_config(self) -> dict[str, Any]:
        """The `cfg.json` SAELens reads; our own config rides along under `metadata.interp`."""
        cfg = self.cfg
        arch = self.saelens_transcoder_architecture if cfg.is_transcoder else self.saelens_architecture
        point = HookPoint.try_parse(cfg.hook_in)
        per_head_z = point is not None and point.kind == "attn.hook_z"  # SAELens flattens its heads
        out: dict[str, Any] = {
            "architecture": arch or f"interp_{self.arch}",
            "d_in": cfg.d_in,
            "d_sae": cfg.d_sae,
            "dtype": cfg.dtype,
            "device": "cpu",
            "apply_b_dec_to_input": self.subtracts_b_dec,
            "normalize_activations": "none",
            "reshape_activations": "hook_z" if per_head_z else "none",
            "metadata": {
                "model_name": cfg.model_name or None,
                "hook_name": cfg.hook_in or None,
                "hook_name_out": cfg.out_hook or None,
                "interp": {
                    "config": cfg.to_dict(),
                    "scale_in": float(self.scale_in),
                    "scale_out": float(self.scale_out),
                },
            },
        }
        if cfg.is_transcoder:
            out["d_out"] = cfg.out_dim
        out.update(self._saelens_extra_config())
        return out

    def _saelens_extra_config(self) -> dict[str, Any]:
        return {}

    # ---- helpers --------------------------------------------------------------------------
    def _copy_into(self, state: dict[str, Tensor], names: tuple[str, ...]) -> None:
        with torch.no_grad():
            for name in names:
                param = getattr(self, name)
                if tuple(state[name].shape) != tuple(param.shape):
                    raise ShapeError(
                        f"{self.arch} SAE: weight {name} has shape {tuple(state[name].shape)}, "
                        f"expected {tuple(param.shape)}"
                    )
                param.copy_(state[name].to(param.dtype))

    def _check_width(self, x: Tensor, width: int, what: str) -> torch.Size:
        if x.ndim == 0 or x.shape[-1] != width:
            where = f" (hook {self.cfg.hook_in})" if self.cfg.hook_in else ""
            raise ShapeError(
                f"{self.arch} SAE{where}: {what} has shape {tuple(x.shape)}, expected [..., {width}]"
            )
        return x.shape[:-1]

    def extra_repr(self) -> str:
        cfg = self.cfg
        k = f", k={cfg.k}" if cfg.k is not None else ""
        return f"arch={self.arch}, d_in={cfg.d_in}, d_sae={cfg.d_sae}{k}, d_out={cfg.out_dim}"
