"""The zoo models whose recipes live in `circuits`, registered with `interp.zoo` through the
`interp.zoo_recipes` entry point (`circuits = "circuits.zoo:recipes"` in `pyproject.toml`).

- `concepts-tiny`: trained on the `concepts` task (`circuits.concepts.train`).
- every ground-truth SIIT model of `circuits.abstraction.ground_truth.RECIPES`.
- `handset-induction`: weights set by hand (`circuits.discovery.handset`); its recipe builds them,
  takes no training and ignores the seed.

To add a model: write a function `train(seed, progress) -> interp.zoo.Trained` (card it with
`interp.zoo.build_card`; put a ground-truth circuit under the card's `circuit` key, inline or as a
file in `Trained.files`) and list a `ZooRecipe` for it in `recipes()`. `interp zoo train NAME` then
writes its folder; `--out interp/zoo/models/NAME` ships it.

    >>> [r.name for r in recipes()]
    ['concepts-tiny', 'hier-eq-siit', 'greater-than-siit', 'handset-induction']
"""

from __future__ import annotations

from circuits.abstraction.ground_truth import zoo_recipes
from circuits.concepts.train import zoo_recipe
from circuits.discovery import handset
from interp import zoo
from interp.tasks import get as get_task
from interp.tasks import tokenizer as task_tokenizer
from interp.zoo.evaluate import evaluate


def handset_induction(seed: int | None = None, progress: bool = False) -> zoo.Trained:
    """The hand-set induction model as a zoo folder: its card carries the true circuit inline and the
    ablation discovery methods should use."""
    model = handset.build()
    task = get_task("induction", length=handset.LENGTH)
    built = handset.card()
    card = zoo.build_card(
        name=handset.NAME,
        description=built["description"],
        model=model,
        seed=0,
        recipe={"trainer": "circuits.discovery.handset", "beta": handset.BETA, "n_ctx": handset.N_CTX},
        train_seconds=0.0,
        tasks={"induction": evaluate(model, task_tokenizer(), task, n=1000, seed=zoo.EVAL_SEED)},
        eval_n=1000,
        known_mechanisms=(
            "Weights set by hand, not trained: L0.H0 is a previous-token head, L1.H0 an induction head "
            "(K-composition with L0.H0), MLP1 relays its output to the logits.",
            "L0.H1 and L1.H1 are distractors writing where nothing reads; MLP0 is zero.",
            "Use the resample ablation: the task's own corruption changes only the token B.",
        ),
        extra={
            "circuit": built["circuit"],
            "ablation": built["ablation"],
            "task_config": {"length": handset.LENGTH},
        },
    )
    return zoo.Trained(model, task_tokenizer(), card)


def recipes() -> list[zoo.ZooRecipe]:
    """Every zoo recipe of this package."""
    hand_set = zoo.ZooRecipe(
        handset.NAME,
        "2-block GPT-2 with hand-set weights implementing induction through a known circuit.",
        handset_induction,
    )
    return [zoo_recipe(), *zoo_recipes(), hand_set]
