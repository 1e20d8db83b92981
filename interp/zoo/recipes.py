"""How each zoo model is trained: one frozen `Recipe` per model, in a table.

`interp.zoo.train(name, out_dir)` runs the recipe; the shipped folders under `interp/zoo/models/`
were written by exactly these recipes (`experiments/zoo/train_all.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InterpError

EVAL_SEED = 1_000_003
"""Seed of the held-out evaluation samples written into cards (training never draws this seed)."""


@dataclass(frozen=True)
class Recipe:
    """Architecture and optimisation of one zoo model (a tiny GPT-2)."""

    name: str
    """Zoo name, e.g. `"ioi-tiny"`."""
    task: str
    """Task trained on (`interp.tasks` name), or `"shakespeare"` for the text LM."""
    description: str
    """One line for the model card."""
    task_config: tuple[tuple[str, object], ...] = ()
    """Options passed to `interp.tasks.get` (as sorted pairs, to stay hashable)."""
    n_layer: int = 2
    """Transformer blocks."""
    d_model: int = 128
    """Residual stream width."""
    n_head: int = 4
    """Attention heads per block."""
    d_mlp: int = 512
    """MLP hidden width."""
    n_ctx: int = 32
    """Maximum sequence length (learned position embeddings)."""
    steps: int = 2000
    """Optimiser steps."""
    batch_size: int = 128
    """Sequences per step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW, linear warm-up then cosine decay to 10%)."""
    warmup: int = 100
    """Warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay (matrices only)."""
    seed: int = 0
    """Default seed: model initialisation and training data."""
    eval_n: int = 1000
    """Held-out samples evaluated for the card."""
    vocab_size: int = 0
    """BPE vocabulary size (text LM only; task models use the task vocabulary)."""

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise InterpError(f"recipe {self.name}: d_model {self.d_model} not divisible by n_head {self.n_head}")


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="ioi-tiny",
            task="ioi",
            description="3-layer, 4-head GPT-2 trained from scratch on IOI prompts (5 templates, 40 names).",
            n_layer=3,
            steps=2500,
        ),
        Recipe(
            name="induction-tiny",
            task="induction",
            description="2-layer attention+MLP GPT-2 trained on single-token induction and repeated sequences.",
            n_layer=2,
            steps=2000,
        ),
        Recipe(
            name="greater-than-tiny",
            task="greater_than",
            description="2-layer GPT-2 trained to complete a war's end year with any later year.",
            n_layer=2,
            steps=2000,
        ),
        Recipe(
            name="hier-eq-tiny",
            task="hierarchical_equality",
            description="2-layer GPT-2 trained on hierarchical equality (W == X) == (Y == Z).",
            n_layer=2,
            d_model=64,
            d_mlp=256,
            steps=1000,
        ),
        Recipe(
            name="facts-tiny",
            task="facts",
            description="2-layer GPT-2 that memorised a made-up knowledge base of 64 people x 3 relations.",
            n_layer=2,
            steps=2000,
        ),
        Recipe(
            name="shakespeare-tiny",
            task="shakespeare",
            description="3-layer GPT-2 language model on the shipped Shakespeare corpus, 2k byte-level BPE.",
            n_layer=3,
            d_model=128,
            d_mlp=512,
            n_ctx=128,
            steps=1500,
            batch_size=32,
            lr=3e-3,
            vocab_size=2048,
            eval_n=0,
        ),
    )
}


def recipe(name: str) -> Recipe:
    """The recipe of zoo model `name`.

    Example:
        >>> recipe("ioi-tiny").n_layer
        3
    """
    if name not in RECIPES:
        raise InterpError(f"no recipe for {name!r}; recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
