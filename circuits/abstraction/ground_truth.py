"""Zoo models with known circuits, trained with SIIT: the recipes, and the code that trains and ships them.

Each `GroundTruthRecipe` names a task, the architecture (an `interp.zoo` `Recipe`: a tiny GPT-2 on
the task tokenizer), which node implements which high-level variable, and the circuit's edges.
`train_ground_truth(name)` trains it from scratch with SIIT (`circuits.abstraction.iit`), evaluates
it, and writes a zoo folder: weights (safetensors), config, tokenizer, `card.json` and the circuit
file named by the card's `circuit` key (schema: `circuits.abstraction.circuit`).

    >>> card = train_ground_truth("greater-than-siit", "out/greater-than-siit")
    >>> card["accuracy"], card["iia"], card["ablated_accuracy"]

Each recipe is registered with the zoo (`zoo_recipes()`, through the `circuits.zoo` entry point), so
`interp zoo train NAME --out interp/zoo/models/NAME` reproduces a shipped folder, as does
`python -m circuits.abstraction.ground_truth NAME [NAME ...]`. A new recipe added to `RECIPES` is
registered with no other change.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from circuits.abstraction.circuit import circuit_dict, node_location, split_node
from circuits.abstraction.highlevel.registry import high_level
from circuits.abstraction.iit import IITConfig, evaluate_circuit, train_iit
from interp import zoo
from interp.errors import InterpError
from interp.hooked import HookedModel
from interp.tasks import tokenizer as task_tokenizer
from interp.tasks.vocab import BOS_ID, EOS_ID, PAD_ID, VOCAB
from interp.zoo.evaluate import evaluate
from interp.zoo.recipes import Recipe
from interp.zoo.store import MODELS_DIR
from interp.zoo.train import build_model, cpu_threads

logger = logging.getLogger(__name__)
CIRCUIT_FILE = "circuit.json"


@dataclass(frozen=True)
class GroundTruthRecipe:
    """A zoo model with a known circuit: architecture, variable -> node alignment, circuit edges."""

    architecture: Recipe
    """Name, task, description and shape (the `steps`/`lr` fields are ignored: `iit` rules training)."""
    alignment: tuple[tuple[str, str], ...]
    """(high-level variable, node) pairs, e.g. ("year", "L0.H1") aligned at `iit.position`, or
    ("left", "MLP0@X") at a named position of its own."""
    edges: tuple[tuple[str, str], ...]
    """Circuit edges [sender, receiver] (nodes: embed, L{l}.H{h}, MLP{l}, logits)."""
    known_mechanisms: tuple[str, ...]
    """Sentences for the model card."""
    iit: IITConfig = field(default_factory=IITConfig)
    seed: int = 0
    family: str = "gpt2"
    """Architecture family: "gpt2" (the zoo's tiny GPT-2) or "llama" (RMSNorm, rotary, gated MLP,
    grouped-query attention with `n_kv_heads` key/value heads; `BUILDERS`)."""
    n_kv_heads: int = 0
    """Key/value heads of a "llama" model (0: one per query head)."""

    @property
    def name(self) -> str:
        return self.architecture.name

    def circuit(self) -> dict:
        """The circuit in the file schema (see `circuits.abstraction.circuit`)."""
        return circuit_dict(list(self.edges), dict(self.alignment), self.iit.position)


def _llama(r: GroundTruthRecipe, vocab_size: int) -> torch.nn.Module:
    """A freshly initialised Llama-style decoder with the recipe's shape (tied embeddings, no bias)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    a = r.architecture
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=a.d_model,
        intermediate_size=a.d_mlp,
        num_hidden_layers=a.n_layer,
        num_attention_heads=a.n_head,
        num_key_value_heads=r.n_kv_heads or a.n_head,
        max_position_embeddings=a.n_ctx,
        initializer_range=a.init_std,
        tie_word_embeddings=True,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
    )
    return LlamaForCausalLM(config)


BUILDERS = {
    "gpt2": lambda r, vocab_size: build_model(r.architecture, vocab_size),
    "llama": _llama,
}
"""Family -> (recipe, vocabulary size) -> a freshly initialised Hugging Face model."""


RECIPES: dict[str, GroundTruthRecipe] = {
    r.name: r
    for r in (
        GroundTruthRecipe(
            architecture=Recipe(
                name="hier-eq-siit",
                task="hierarchical_equality",
                description="2-layer GPT-2 trained with SIIT: layer-0 heads bring W to X and Y to Z, MLP0 "
                "computes left at X and right at Z, L1.H0 alone gathers them at the end and MLP1 combines "
                "them; the other layer-1 heads are irrelevant (ground truth).",
                n_layer=2, d_model=64, n_head=4, d_mlp=256, n_ctx=16,
            ),
            alignment=(("left", "MLP0@X"), ("right", "MLP0@Z"), ("output", "MLP1")),
            edges=(
                ("embed", "L0.H0"), ("embed", "L0.H1"), ("embed", "L0.H2"), ("embed", "L0.H3"), ("embed", "MLP0"),
                ("L0.H0", "MLP0"), ("L0.H1", "MLP0"), ("L0.H2", "MLP0"), ("L0.H3", "MLP0"),
                ("MLP0", "L1.H0"), ("L1.H0", "MLP1"), ("MLP1", "logits"),
            ),
            known_mechanisms=(
                "Layer-0 heads move W to position X and Y to position Z (all four are in the circuit).",
                "MLP0 computes left = (W == X) at position X and right = (Y == Z) at position Z.",
                "L1.H0 at END attends to X and Z and carries left and right to the end.",
                "MLP1 at END computes output = (left == right) and writes the true/false logits.",
                "Auxiliary targets in training: left is also predicted at X and right at Z.",
                "L1.H1, L1.H2 and L1.H3 were resample-ablated during training (SIIT) and do not matter.",
            ),
            iit=IITConfig(steps=3000, lr=5e-3, strict_weight=2.0, supervise=("left", "right")),
        ),
        GroundTruthRecipe(
            architecture=Recipe(
                name="greater-than-siit",
                task="greater_than",
                description="2-layer GPT-2 trained with SIIT so that L0.H1 moves the start year to the end and "
                "MLP0 turns it into the later years; layer 1 and the other heads are irrelevant (ground truth).",
                n_layer=2, d_model=64, n_head=4, d_mlp=256, n_ctx=16,
            ),
            alignment=(("year", "L0.H1"), ("threshold", "MLP0")),
            edges=(("embed", "L0.H1"), ("L0.H1", "MLP0"), ("MLP0", "logits")),
            known_mechanisms=(
                "L0.H1 at END attends to the start year YEAR and copies its two digits (variable year).",
                "MLP0 at END maps the year to a distribution over the later two-digit years (variable threshold).",
                "L0.H0, L0.H2, L0.H3, all layer-1 heads and MLP1 were resample-ablated during training (SIIT).",
            ),
            iit=IITConfig(steps=800),
        ),
        GroundTruthRecipe(
            architecture=Recipe(
                name="greater-than-llama-siit",
                task="greater_than",
                description="2-layer Llama-style model (RMSNorm, rotary, gated MLP, 4 query heads sharing 2 "
                "key/value heads) trained with SIIT so that L0.H1 moves the start year to the end and MLP0 "
                "turns it into the later years; layer 1 and the other heads are irrelevant (ground truth).",
                n_layer=2, d_model=64, n_head=4, d_mlp=128, n_ctx=16,
            ),
            alignment=(("year", "L0.H1"), ("threshold", "MLP0")),
            edges=(("embed", "L0.H1"), ("L0.H1", "MLP0"), ("MLP0", "logits")),
            known_mechanisms=(
                "Grouped-query attention: query heads H0, H1 share key/value head 0; H2, H3 share key/value head 1.",
                "L0.H1 at END attends to the start year YEAR and copies its two digits (variable year).",
                "MLP0 at END maps the year to a distribution over the later two-digit years (variable threshold).",
                "L0.H0, L0.H2, L0.H3, all layer-1 heads and MLP1 were resample-ablated during training (SIIT).",
            ),
            iit=IITConfig(steps=1500),
            family="llama",
            n_kv_heads=2,
        ),
        GroundTruthRecipe(
            architecture=Recipe(
                name="ioi-siit",
                task="ioi",
                description="2-layer GPT-2 trained with SIIT on indirect object identification: layer-0 heads "
                "and MLP0 gather which name is repeated, L1.H0 at END is the name mover that writes the "
                "indirect object; L1.H1-3 and MLP1 are irrelevant (ground truth).",
                n_layer=2, d_model=64, n_head=4, d_mlp=256, n_ctx=24,
            ),
            alignment=(("answer", "L1.H0"),),
            edges=(
                ("embed", "L0.H0"), ("embed", "L0.H1"), ("embed", "L0.H2"), ("embed", "L0.H3"), ("embed", "MLP0"),
                ("L0.H0", "MLP0"), ("L0.H1", "MLP0"), ("L0.H2", "MLP0"), ("L0.H3", "MLP0"),
                ("embed", "L1.H0"), ("L0.H0", "L1.H0"), ("L0.H1", "L1.H0"), ("L0.H2", "L1.H0"),
                ("L0.H3", "L1.H0"), ("MLP0", "L1.H0"), ("L1.H0", "logits"),
            ),
            known_mechanisms=(
                "L1.H0 at END carries the indirect object's name to the logits (variable answer): patching "
                "its output from another prompt makes the model name that prompt's indirect object.",
                "Layer 0 (heads and MLP) computes what L1.H0 needs to tell the repeated name from the other.",
                "L1.H1, L1.H2, L1.H3 and MLP1 were resample-ablated during training (SIIT) and do not matter.",
            ),
            iit=IITConfig(steps=2500, batch_size=64, lr=3e-3),
        ),
    )
}  # fmt: skip


def recipe(name: str) -> GroundTruthRecipe:
    if name not in RECIPES:
        raise InterpError(f"no ground-truth recipe {name!r}; recipes: {', '.join(RECIPES)}")
    return RECIPES[name]


def train(r: GroundTruthRecipe, seed: int | None = None, progress: bool = True) -> tuple[HookedModel, dict]:
    """Initialise and SIIT-train the model of `r`; returns (model, training stats)."""
    seed = r.seed if seed is None else seed
    torch.manual_seed(seed)
    if r.family not in BUILDERS:
        raise InterpError(f"recipe {r.name}: unknown family {r.family!r}; families: {', '.join(BUILDERS)}")
    model = HookedModel(BUILDERS[r.family](r, len(VOCAB)), task_tokenizer())
    tm = high_level(r.architecture.task)
    nodes = [n for n in r.circuit()["nodes"] if n not in ("embed", "logits")]
    stats = train_iit(model, tm, dict(r.alignment), r.iit, circuit_nodes=nodes, seed=seed, progress=progress)
    return model, stats


def card(r: GroundTruthRecipe, model: HookedModel, stats: dict, seed: int) -> dict:
    """The model card (`interp.zoo.build_card`) plus the circuit's file, alignment and measured faithfulness."""
    task = r.architecture.task
    tm = high_level(task)
    nodes = [n for n in r.circuit()["nodes"] if n not in ("embed", "logits")]
    faithfulness = evaluate_circuit(model, tm, dict(r.alignment), nodes, n=1000, seed=12345)
    metrics = evaluate(model.hf_model, model.tokenizer, task, n=r.architecture.eval_n)
    arch = dataclasses.asdict(r.architecture)
    return zoo.build_card(
        name=r.name,
        description=r.architecture.description,
        model=model.hf_model,
        seed=seed,
        recipe={
            "trainer": "circuits.abstraction.ground_truth",
            "architecture": {
                **{k: arch[k] for k in ("n_layer", "d_model", "n_head", "d_mlp", "n_ctx")},
                **({"family": r.family, "n_kv_heads": r.n_kv_heads} if r.family != "gpt2" else {}),
            },
            "siit": dataclasses.asdict(r.iit),
            "command": f"interp zoo train {r.name}",
        },
        train_seconds=stats["train_seconds"],
        tasks={task: metrics},
        eval_n=r.architecture.eval_n,
        known_mechanisms=r.known_mechanisms,
        extra={
            "circuit": CIRCUIT_FILE,
            "alignment": {v: str(node_location(*split_node(n, r.iit.position))) for v, n in r.alignment},
            "iia": faithfulness["iia"],
            "ablated_accuracy": faithfulness["ablated_accuracy"],
            "accuracy_drop_when_non_circuit_ablated": faithfulness["accuracy_drop"],
        },
    )


def trained(r: GroundTruthRecipe, seed: int | None = None, progress: bool = True) -> zoo.Trained:
    """SIIT-train `r`, card it, and attach its circuit file; `interp.zoo.train` writes the folder."""
    seed = r.seed if seed is None else seed
    with cpu_threads(zoo.TRAIN_THREADS):
        model, stats = train(r, seed, progress)
    info = card(r, model, stats, seed)
    logger.info("%s: accuracy %s, iia %s", r.name, info["accuracy"], info["iia"])
    return zoo.Trained(model.hf_model, task_tokenizer(), info, {CIRCUIT_FILE: r.circuit()})


def zoo_recipes(table: dict[str, GroundTruthRecipe] = RECIPES) -> list[zoo.ZooRecipe]:
    """One zoo registry entry per ground-truth recipe."""
    return [
        zoo.ZooRecipe(r.name, r.architecture.description, functools.partial(trained, r))
        for r in table.values()
    ]


def train_ground_truth(
    name: str, out_dir: str | Path | None = None, seed: int | None = None, progress: bool = True
) -> dict:
    """Train zoo model `name` and write its folder through `interp.zoo.train` (default: the shipped
    folder, `interp/zoo/models/NAME`); returns the card."""
    (entry,) = zoo_recipes({name: recipe(name)})
    return zoo.train(entry, out_dir if out_dir is not None else MODELS_DIR / name, seed, progress)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    for arg in sys.argv[1:] or list(RECIPES):
        train_ground_truth(arg)
