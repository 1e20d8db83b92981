"""What `interp sae train` is asked to do, as one frozen dataclass: each field is a command-line option
(its docstring the help, its default the option's; see `interp.options`). Recorded in result.json and
reused by `sae eval`. Imports no torch, so the CLI builds its options from it at start-up.

The defaults suit the small zoo models (`TrainConfig`'s own defaults suit a large run); `saes.pipeline`
turns a `RunInputs` into an `SAEConfig` and a `TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_K = 16
"""Active latents per token when the architecture needs k and the run names none."""


@dataclass(frozen=True)
class RunInputs:
    """The inputs of one `interp sae train` run.

    Example:
        >>> RunInputs("shakespeare-tiny", "blocks.1.hook_resid_post", "topk", k=16).expansion
        8
    """

    model: str
    """Zoo name, local model folder, or hub id."""
    hook: str
    """Hook to read, e.g. blocks.1.hook_resid_post."""
    arch: str = "topk"
    """Architecture (relu, topk, batchtopk, jumprelu, gated, matryoshka, mutual_choice, feature_choice, gsae)."""
    hook_out: str | None = None
    """Reconstruct this hook instead (a transcoder)."""
    k: int | None = None
    """Active latents per token (TopK family; the mean per token for batch-allocated architectures).
    Default 16 for the architectures that need it."""
    expansion: int = 8
    """d_sae = expansion * d_in."""
    tokens: int = 200_000
    """Training activations."""
    dataset: str | None = None
    """datasets save_to_disk folder (default: the shipped corpus)."""
    context_len: int | None = None
    """Tokens per window (default 64, or the model's maximum positions when shorter)."""
    batch_size: int = 1024
    """Activations per step."""
    lr: float = 1e-3
    """Peak learning rate."""
    sparsity_coef: float = 1.0
    """Sparsity penalty coefficient: L1 (relu, gated) or L0 (jumprelu); unused by the TopK family."""
    seed: int = 0
    """Random seed."""
    eval_windows: int = 32
    """Held-out windows to evaluate on."""
    cache_dir: str | None = None
    """Cache activations here and reuse them."""
    device: str = "cpu"
    """cpu or cuda."""

    def resolved_k(self, needs_k: bool) -> int | None:
        """`k`, or `DEFAULT_K` for an architecture that needs one when none was given."""
        return DEFAULT_K if self.k is None and needs_k else self.k
