"""`Trainer(cfg, train_cfg).fit(batches)`: train an SAE on any iterable of activation batches.

One step, in order:
1. (first step only) estimate the input scale and initialise `b_dec` from the first batch(es),
2. set the learning rate (linear warm-up, constant, linear decay) and the sparsity coefficient (warm-up),
3. loss = reconstruction + sparsity + auxiliary (AuxK / Zipf, fed by the dead-latent tracker),
4. stop with a clear error if it is not finite (the last good checkpoint is kept),
5. backward, average gradients across ranks, remove the gradient component parallel to each decoder
   row, clip the gradient norm, Adam step, renormalise decoder rows to unit norm,
6. update the dead-latent tracker, log, and write an atomic checkpoint every N steps.

A batch is a tensor [batch, d_in]; a tuple `(x, target)` or `(x, target, grad)` (transcoders, g-SAE);
or a dict from an `ActivationStore` keyed by hook name (the trainer picks `cfg.hook_in` and
`cfg.out_hook`, and `"<out_hook>:grad"` if the store recorded gradients).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from interp.errors import InterpError, ShapeError
from saes.architectures import SAELoss, SparseAutoencoder, build
from saes.checkpoint import latest_checkpoint, read_newest_checkpoint, write_checkpoint
from saes.config import SAEConfig, TrainConfig
from saes.distributed import DistContext
from saes.format import DTYPES
from saes.interrupt import deferred_interrupt
from saes.memory import MemoryReport, per_rank, reset_peak
from saes.prefetch import Prefetched, prefetch_threads
from saes.schedules import geometric_median, lr_factor
from saes.sparse import firing_counts, mean_l0
from saes.wandb_run import wandb_run

logger = logging.getLogger(__name__)

Batch = tuple[Tensor, Tensor | None, Tensor | None]


class TrainingDivergedError(InterpError):
    """The loss or the gradients became NaN or infinite."""


class Trainer:
    """Trains one SAE. `fit` returns the trained SAE (an `nn.Module`).

    Example:
        >>> cfg = saes.SAEConfig("topk", d_in=64, d_sae=512, k=8)
        >>> batches = (torch.randn(1024, 64) for _ in range(100))
        >>> sae = saes.Trainer(cfg, saes.TrainConfig(lr=1e-3, progress=False)).fit(batches)  # doctest: +SKIP
    """

    def __init__(
        self,
        cfg: SAEConfig,
        train_cfg: TrainConfig | None = None,
        *,
        dist: DistContext | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.cfg = cfg
        self.tc = train_cfg or TrainConfig()
        self.dist = dist or DistContext()
        self.device = torch.device(device)
        generator = torch.Generator().manual_seed(self.tc.seed)
        self.sae: SparseAutoencoder = build(cfg, generator=generator).to(self.device)
        fused = self.device.type in ("cpu", "cuda")  # one kernel per parameter: 2.5x less time on the CPU
        self.optimizer = torch.optim.Adam(self.sae.parameters(), self.tc.lr, self.tc.adam_betas, fused=fused)
        self.step = self.tokens = 0
        self.initialized = False
        self.tokens_since_fired = torch.zeros(cfg.d_sae, dtype=torch.int64, device=self.device)
        self.density = torch.zeros(cfg.d_sae, dtype=torch.float32, device=self.device)
        self.last_metrics: dict[str, float] = {}
        """Means over the last logging window (`log_every` steps): loss terms (normalised units), `l0`,
        `mse_per_element` (model units, the scale of `saes.evaluate`'s `mse`), plus `dead` and `lr`."""
        self._window: dict[str, Tensor] = {}
        self._window_steps = 0
        self._last_checkpoint_step = -1
        self._pending: list[Batch] = []
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.tc.autocast == "float16")
        self.peak_memory: list[MemoryReport] = []
        """Peak memory of every rank, filled in when `fit` returns (see `saes.memory`)."""
        if self.tc.autocast is not None and cfg.dtype != "float32":
            raise InterpError(
                f"TrainConfig.autocast={self.tc.autocast!r} keeps float32 master weights: use SAEConfig.dtype="
                f"'float32' (got {cfg.dtype!r}), or drop autocast to train in {cfg.dtype} throughout"
            )
        reset_peak(self.device)

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self, batches: Iterable[Any], *, resume: bool = False) -> SparseAutoencoder:
        """Train on `batches` until `TrainConfig.max_steps` or the end of the data.

        With `resume=True` the newest checkpoint in `checkpoint_dir` is loaded and the batches it had
        already consumed are skipped, so an interrupted run continues exactly (same final weights on CPU).
        """
        if resume:
            self._resume()
        total = self.tc.max_steps  # no batch is pulled past the last step: a store would compute it
        left = None if total is None else max(0, total - self.step)
        source = self._stream(batches, left)
        with contextlib.closing(source):  # stops a background producer on every exit path
            self._loop(source if self.initialized else self._initialize(source), total)
        if self.step == 0:
            raise InterpError("no training batches: the dataset or activation stream is empty")
        if self._window_steps:  # the steps since the last log make the final window
            self.last_metrics = self._metrics()
            self._window, self._window_steps = {}, 0
        if self.tc.checkpoint_dir and self._last_checkpoint_step != self.step:
            self.save_checkpoint()
        self.sae.eval()
        self.report_memory()
        return self.sae

    def _loop(self, stream: Iterator[Batch], total: int | None) -> None:
        self.sae.train()
        bar = tqdm(total=total, initial=self.step, disable=not (self.tc.progress and self.dist.is_main))
        interrupts = deferred_interrupt(enabled=self.dist.world_size == 1)
        run_cfg = {"sae": self.cfg.to_dict(), "train": self.tc.to_dict()}
        wandb = wandb_run(self.tc.wandb_project if self.dist.is_main else None, run_cfg)
        with bar, wandb as run, interrupts as interrupt:
            for x, target, grad in stream:
                terms = self._train_step(x, target, grad)
                self._after_step(terms, x.shape[0], bar, run)
                if interrupt.requested:
                    self._checkpoint_and_stop()

    def train_batch(self, batch: Any) -> int:
        """Train on one batch, for code that drives several trainers in lockstep (`saes.parallel`).

        Like `fit`, the first `norm_estimation_batches` batches initialise the SAE and are then trained
        on. Returns the number of optimiser steps taken (0 while those first batches are collected).
        """
        self._pending.append(self._unpack(batch))
        if not self.initialized:
            if len(self._pending) < self.tc.norm_estimation_batches:
                return 0
            self._pending = list(self._initialize(iter(self._pending)))
        self.sae.train()
        steps, pending, self._pending = len(self._pending), self._pending, []
        with tqdm(disable=True) as quiet:
            for x, target, grad in pending:
                self._after_step(self._train_step(x, target, grad), x.shape[0], quiet, None)
        return steps

    def report_memory(self) -> list[MemoryReport]:
        """Gather every rank's peak memory into `peak_memory` and log it (a collective)."""
        self.peak_memory = per_rank(self.device, self.dist)
        if self.dist.is_main:
            logger.info("peak memory per rank (GiB): %s", [round(m.peak_gib, 3) for m in self.peak_memory])
        return self.peak_memory

    def _train_step(self, x: Tensor, target: Tensor | None, grad: Tensor | None) -> SAELoss:
        for group in self.optimizer.param_groups:
            group["lr"] = self.tc.lr * lr_factor(
                self.step, self.tc.lr_warmup_steps, self.tc.lr_decay_steps, self.tc.max_steps
            )
        warm = self.tc.sparsity_warmup_steps
        sparsity_coef = self.tc.sparsity_coef * (min(1.0, (self.step + 1) / warm) if warm else 1.0)
        autocast = self.tc.autocast is not None
        dtype = DTYPES[self.tc.autocast] if autocast else None
        with torch.autocast(self.device.type, dtype=dtype, enabled=autocast):  # params stay float32
            terms = self.sae.loss(
                x,
                target,
                sparsity_coef=sparsity_coef,
                aux_coef=self.tc.aux_coef,
                dead_mask=self.tokens_since_fired >= self.tc.dead_window_tokens,
                density=self.density if self.step > 0 else None,
                aux_k=self.tc.aux_k,
                grad=grad,
            )
        self._check_finite("loss", terms.total, terms)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()  # float16 only: scaled against underflow
        self.dist.average_gradients(self.sae)
        self.scaler.unscale_(self.optimizer)
        if self.sae.unit_norm_decoder:
            _remove_parallel_grad(self.sae.W_dec)
        grad_norm = self._clip_gradients()
        if not self.scaler.is_enabled():  # with float16 the scaler skips steps whose gradients overflow
            self._check_finite("gradient norm", grad_norm, terms)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.sae.unit_norm_decoder:
            with torch.no_grad():
                self.sae.W_dec /= self.sae.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        self.dist.average_buffers(self.sae)
        return terms

    def _clip_gradients(self) -> Tensor:
        """Clip the global gradient norm to `grad_clip`; returns the norm before clipping."""
        params = [p for p in self.sae.parameters() if p.grad is not None]
        max_norm = self.tc.grad_clip if self.tc.grad_clip is not None else math.inf
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def _after_step(self, terms: SAELoss, batch: int, bar: Any, run: Any) -> None:
        self.step += 1
        global_batch = self.dist.sum_int(batch)
        self.tokens += global_batch
        self._track_latents(terms.acts, global_batch)
        with torch.no_grad():  # summed on the device; read (one sync) only when logging
            for key, value in _window_terms(terms).items():
                self._window[key] = self._window[key] + value if key in self._window else value
        self._window_steps += 1
        if self.step % self.tc.log_every == 0 or self.step == 1:
            self.last_metrics = self._metrics()
            self._window, self._window_steps = {}, 0
            bar.set_postfix(
                {k: f"{v:.3g}" for k, v in self.last_metrics.items() if k in ("mse", "l0", "dead")}
            )
            logger.debug("step %d: %s", self.step, self.last_metrics)
            if run is not None:
                run.log(self.last_metrics, step=self.step)
        bar.update(1)
        every = self.tc.checkpoint_every
        if self.tc.checkpoint_dir and every and self.step % every == 0:
            self.save_checkpoint()

    # ---- helpers ------------------------------------------------------------------------------
    def _stream(self, batches: Iterable[Any], limit: int | None) -> Iterator[Batch]:
        """At most `limit` unpacked batches on the device, skipping the ones a resumed run already
        consumed; computed on a background thread where that overlaps them with training."""
        skip = getattr(batches, "skip_batches", None)  # e.g. a store: skips without computing
        if self.step and callable(skip):
            it, skipped = iter(skip(self.step)), self.step
        else:
            it = iter(batches)
            skipped = sum(1 for _ in itertools.islice(it, self.step))
        if skipped < self.step:
            raise InterpError(f"cannot resume at step {self.step}: the data ran out after {skipped} batches")
        # a source that runs a model (a store, not a list), and a single process (ranks already share the cores)
        ahead = self.tc.prefetch and getattr(batches, "runs_model", False) and self.dist.world_size == 1
        producer = prefetch_threads(self.device) if ahead else 0
        with (
            Prefetched(it, limit=limit, producer_threads=producer)
            if producer
            else contextlib.nullcontext(itertools.islice(it, limit))
        ) as source:
            for batch in source:
                yield self._unpack(batch)

    def _unpack(self, batch: Any) -> Batch:
        if isinstance(batch, dict):
            if self.cfg.hook_in not in batch:
                raise InterpError(f"batch has hooks {sorted(batch)}, but the SAE reads {self.cfg.hook_in!r}")
            x, target = batch[self.cfg.hook_in], batch.get(self.cfg.out_hook)
            grad = batch.get(f"{self.cfg.out_hook}:grad")
        elif isinstance(batch, tuple | list):
            x, target, grad = (*batch, None, None)[:3]
        else:
            x, target, grad = batch, None, None
        if self.cfg.is_transcoder and target is None:
            raise InterpError(
                f"a transcoder needs (input, target) batches with {self.cfg.out_hook!r} activations"
            )
        for what, t, width, hook in (
            ("input", x, self.cfg.d_in, self.cfg.hook_in),
            ("target", target, self.cfg.out_dim, self.cfg.out_hook),
        ):
            if t is not None and (t.ndim != 2 or t.shape[-1] != width):
                where = f" from hook {hook!r}" if hook else ""
                raise ShapeError(
                    f"training {what}{where} has shape {tuple(t.shape)}, but the SAE expects [batch, {width}]"
                )
        return self._to_device(x), self._to_device(target), self._to_device(grad)

    def _to_device(self, t: Tensor | None) -> Tensor | None:
        return None if t is None else t.to(self.device, non_blocking=True)

    def _initialize(self, stream: Iterator[Batch]) -> Iterator[Batch]:
        """Estimate the input scale and b_dec from the first batches, then replay them."""
        head = list(itertools.islice(stream, self.tc.norm_estimation_batches))
        if not head:
            raise InterpError("no training batches: the dataset or activation stream is empty")
        xs = self.dist.gather(torch.cat([b[0] for b in head]).float())
        ts = xs if head[0][1] is None else self.dist.gather(torch.cat([b[1] for b in head]).float())
        with torch.no_grad():
            if self.cfg.normalize == "mean_norm":
                scale_in = self.cfg.d_in**0.5 / xs.norm(dim=-1).mean().clamp_min(1e-12)
                scale_out = self.cfg.out_dim**0.5 / ts.norm(dim=-1).mean().clamp_min(1e-12)
                self.sae.scale_in.fill_(float(scale_in))
                self.sae.scale_out.fill_(float(scale_in if head[0][1] is None else scale_out))
            targets = ts * self.sae.scale_out
            if self.tc.b_dec_init == "geometric_median":
                self.sae.b_dec.copy_(geometric_median(targets))
            elif self.tc.b_dec_init == "mean":
                self.sae.b_dec.copy_(targets.mean(0))
        self.initialized = True
        return itertools.chain(head, stream)

    def _track_latents(self, acts: Tensor, global_batch: int) -> None:
        counts = firing_counts(acts)  # [d_sae]; acts is dense or sparse COO
        fired = self.dist.any(counts > 0)
        self.tokens_since_fired = torch.where(fired, 0, self.tokens_since_fired + global_batch)
        freq = self.dist.mean(counts.float() / acts.shape[0])
        self.density = freq if self.step == 1 else 0.99 * self.density + 0.01 * freq

    def _metrics(self) -> dict[str, float]:
        """Means over the steps since the last log (so a short run does not report its first step)."""
        out = {k: float(v) / self._window_steps for k, v in self._window.items()}
        scale = float(self.sae.scale_out) ** 2 * self.cfg.out_dim
        out["mse_per_element"] = out["mse"] / max(scale, 1e-30)
        out["log_window_steps"] = self._window_steps
        out["dead"] = float((self.tokens_since_fired >= self.tc.dead_window_tokens).float().mean())
        out["lr"] = self.optimizer.param_groups[0]["lr"]
        return out

    def _check_finite(self, what: str, value: Tensor, terms: SAELoss) -> None:
        bad = torch.tensor([not bool(torch.isfinite(value).all())])
        if not bool(self.dist.any(bad)[0]):  # collective, so every rank stops together
            return
        ckpt = latest_checkpoint(self.tc.checkpoint_dir) if self.tc.checkpoint_dir else None
        kept = f"the last good checkpoint {ckpt} is kept" if ckpt else "no checkpoint was written"
        raise TrainingDivergedError(
            f"training diverged at step {self.step}: {what} is {float(value.detach().float().reshape(-1)[0])} "
            f"(mse={float(terms.mse.detach())}, sparsity={float(terms.sparsity.detach())}, "
            f"aux={float(terms.aux.detach())}); {kept}. Lower the learning rate, check the inputs for "
            "NaN/inf, or enable grad_clip"
        )

    # ---- checkpoints ----------------------------------------------------------------------------
    def trainer_state(self) -> dict[str, Any]:
        """Everything besides the weights that exact resumption needs (plain tensors and numbers)."""
        return {
            "step": self.step,
            "tokens": self.tokens,
            "optimizer": self.optimizer.state_dict(),
            "tokens_since_fired": self.tokens_since_fired.cpu(),
            "density": self.density.cpu(),
            "torch_rng": torch.get_rng_state(),
        }

    def save_checkpoint(self) -> None:
        """Write a checkpoint for the current step (rank 0 only; all ranks wait for it)."""
        if self.dist.is_main:
            write_checkpoint(
                self.tc.checkpoint_dir,
                self.step,
                self.sae,
                self.tc.to_dict(),
                self.trainer_state(),
                self.tc.keep_checkpoints,
            )
        self._last_checkpoint_step = self.step
        self.dist.barrier()

    def _checkpoint_and_stop(self) -> None:
        """Ctrl-C arrived during the last step: save it (when checkpointing) and stop."""
        if self.tc.checkpoint_dir and self._last_checkpoint_step != self.step:
            self.save_checkpoint()
        where = (
            f"checkpoint saved in {self.tc.checkpoint_dir}" if self.tc.checkpoint_dir else "no checkpoint_dir"
        )
        logger.warning("interrupted at step %d; %s", self.step, where)
        raise KeyboardInterrupt

    def _resume(self) -> None:
        if not self.tc.checkpoint_dir:
            raise InterpError("resume=True needs TrainConfig.checkpoint_dir")
        found = read_newest_checkpoint(self.tc.checkpoint_dir, self.sae)
        if found is None:
            logger.info("no checkpoint in %s; starting from scratch", self.tc.checkpoint_dir)
            return
        path, state = found
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.tokens = int(state["step"]), int(state["tokens"])
        self.tokens_since_fired = state["tokens_since_fired"].to(self.device)
        self.density = state["density"].to(self.device)
        torch.set_rng_state(state["torch_rng"])
        self.initialized = True
        self._last_checkpoint_step = self.step
        logger.info("resumed from %s (step %d)", path, self.step)


def _window_terms(terms: SAELoss) -> dict[str, Tensor]:
    """The logged terms of one step as 0-d tensors (no device sync), keyed as `SAELoss.scalars()`."""
    return {
        "loss": terms.total.detach().float(),
        "mse": terms.mse.detach().float(),
        "sparsity": terms.sparsity.detach().float(),
        "aux": terms.aux.detach().float(),
        "l0": mean_l0(terms.acts),
    }


def _remove_parallel_grad(W_dec: torch.nn.Parameter) -> None:
    """Project out the gradient component along each (unit-norm) decoder row."""
    if W_dec.grad is None:
        return
    with torch.no_grad():
        unit = W_dec / W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)  # [d_sae, d_out]
        W_dec.grad -= (W_dec.grad * unit).sum(-1, keepdim=True) * unit
