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
    init_std: float = 0.02
    """Standard deviation of the initial weights (GPT-2's `initializer_range`)."""
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
    notes: tuple[str, ...] = ()
    """What the training data imposes on the mechanism (copied into the card's `known_mechanisms`)."""

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise InterpError(
                f"recipe {self.name}: d_model {self.d_model} not divisible by n_head {self.n_head}"
            )


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="ioi-tiny",
            task="ioi",
            description="3-layer, 4-head GPT-2 trained from scratch on IOI prompts (5 templates, 40 names).",
            n_layer=3,
            steps=2000,
            batch_size=64,
            lr=3e-3,
            notes=("Supervised only at END with the IO name; any IOI circuit was found by training.",),
        ),
        Recipe(
            name="induction-tiny",
            task="induction",
            description="2-layer GPT-2 trained on single-token induction and on randomly repeated sequences.",
            n_ctx=48,
            init_std=0.08,
            steps=1500,
            batch_size=64,
            lr=3e-3,
            notes=(
                "Trained on random word sequences: a 2-layer model can only solve them with a "
                "previous-token head in layer 0 feeding an induction head in layer 1.",
            ),
        ),
        Recipe(
            name="greater-than-tiny",
            task="greater_than",
            description="2-layer GPT-2 trained to complete a period's end year with any later year.",
            init_std=0.08,
            steps=1500,
            batch_size=64,
            lr=3e-3,
            notes=(
                "Targets are drawn uniformly from the later years, so the ideal output is uniform above YY.",
            ),
        ),
        Recipe(
            name="hier-eq-tiny",
            task="hierarchical_equality",
            description="2-layer, d_model 64 GPT-2 trained on hierarchical equality (W == X) == (Y == Z).",
            d_model=64,
            d_mlp=256,
            steps=800,
            batch_size=64,
            lr=3e-3,
            notes=(
                "Auxiliary targets in training: the model predicts left = (W == X) at position X and "
                "right = (Y == Z) at position Z, so both intermediate variables are computed there.",
            ),
        ),
        Recipe(
            name="facts-tiny",
            task="facts",
            description="2-layer GPT-2 that memorised a made-up knowledge base of 64 people x 3 relations.",
            steps=1000,
            batch_size=64,
            lr=3e-3,
            notes=("Facts are memorised (there is nothing to generalise); the subject spans positions 1-2.",),
        ),
        Recipe(
            name="shakespeare-tiny",
            task="shakespeare",
            description="2-layer GPT-2 language model on the shipped Shakespeare corpus, 2k byte-level BPE.",
            n_ctx=128,
            steps=800,
            batch_size=16,
            lr=3e-3,
            init_std=0.05,
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
