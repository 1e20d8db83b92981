"""Run every explanation method on a model and score it against the true counterfactuals.

Pipeline:
  1. Draw a training sample (concept-labelled; methods fit on it) and a test sample from the task.
  2. Edits: every test example x every concept x every other value of that concept.
  3. Ground truth: ICaCE of each edit from the true counterfactual texts (`data.true_icace`).
  4. Each method estimates the same effects without the counterfactual texts; `scoring.metrics`
     compares them (ICaCE error = mean L2 distance, order-faithfulness, direction agreement).

    >>> report = explain(resolve_model("concepts-tiny"), ExplainConfig(methods=("leace", "matched")))
    >>> report.scores["leace"]["icace_error"], report.table()
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

import interp
from circuits.concepts import registry
from circuits.concepts.data import Edits, all_edits, check_model, true_icace
from circuits.concepts.scoring import clean, metrics
from interp import HookedModel
from interp.errors import InterpError
from interp.tasks import get as get_task
from interp.tasks.concepts import Concepts, ConceptSample, concept_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainConfig:
    """What to explain and with which methods.

    Example:
        >>> ExplainConfig(methods=("leace", "cpm"), concepts=("food", "ambiance"), n_test=50)
    """

    methods: tuple[str, ...] = tuple(registry.METHODS)
    """Registered method names (`circuits.concepts.registry.names()`)."""
    concepts: tuple[str, ...] | None = None
    """Concepts to edit (None: all of the task's)."""
    n_train: int = 1000
    """Concept-labelled training examples the methods fit on."""
    n_test: int = 100
    """Test examples; each gives one edit per concept and other value."""
    seed: int = 0
    """Seed of the test sample (the training sample uses seed + 1)."""
    hook: str | None = None
    """Site hook for every method that has one (None: each method's default)."""

    def __post_init__(self) -> None:
        if not self.methods:
            raise InterpError("no methods given; methods: " + ", ".join(registry.names()))
        for name in self.methods:
            registry.get(name)
        for name in self.concepts or ():
            concept_index(name)
        if self.n_test < 1 or self.n_train < 0:
            raise InterpError("n_test must be >= 1 and n_train >= 0")


@dataclass(frozen=True, eq=False)
class ConceptReport:
    """Estimated and true ICaCE of every edit, and each method's scores.

    `true` and each `estimates[name]` are [edit, label]; `scores[name]` is `scoring.metrics` output.
    """

    config: ExplainConfig
    edits: Edits
    true: Tensor  # [edit, label]
    estimates: dict[str, Tensor]  # method -> [edit, label]
    scores: dict[str, dict]
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> list[dict]:
        """One row per (method, concept): ICaCE error, order-faithfulness, direction agreement."""
        rows = []
        for name, score in self.scores.items():
            for concept, s in score["per_concept"].items():
                rows.append({"method": name, "concept": concept} | {k: clean(s[k]) for k in _COLUMNS})
        return rows

    def beats_baseline(self, baseline: str = registry.BASELINE) -> dict[str, bool]:
        """Method -> whether its ICaCE error is below the baseline's on every concept."""
        if baseline not in self.scores:
            return {}
        base = self.scores[baseline]["per_concept"]
        return {
            name: all(s["icace_error"] < base[c]["icace_error"] for c, s in score["per_concept"].items())
            for name, score in self.scores.items()
            if name != baseline
        }

    def to_dict(self) -> dict:
        """JSON-ready results: per method `icace_error` (mean L2) and its per-concept scores."""
        true_norm = self.true.norm(dim=-1)
        return {
            "config": dataclasses.asdict(self.config),
            "distance": "L2 (Euclidean) distance between estimated and true ICaCE vectors over the label distribution",
            "n_edits": len(self.edits),
            "true_effect": {
                c: clean(true_norm[self.edits.mask(c)].mean().item()) for c in self.edits.concepts()
            },
            "methods": {
                name: {
                    "icace_error": clean(score["icace_error"]),
                    "icace_error_cosine": clean(score["icace_error_cosine"]),
                    "icace_error_normdiff": clean(score["icace_error_normdiff"]),
                    "seconds": round(self.seconds.get(name, 0.0), 2),
                    "summary": registry.get(name).summary,
                    "per_concept": {
                        c: {k: clean(v) for k, v in s.items()} for c, s in score["per_concept"].items()
                    },
                }
                for name, score in self.scores.items()
            },
            "beats_baseline": self.beats_baseline(),
        }

    def plot(self, path: str | Path) -> Path:
        """Figure of the scores per method and concept (PNG/PDF/SVG by suffix); returns the path."""
        from circuits.concepts.plot import plot_report

        return plot_report(self, path)


_COLUMNS = ("icace_error", "order_faithfulness", "direction_agreement", "true_effect", "estimated_effect")


def resolve_model(model: str | Path | HookedModel) -> HookedModel:
    """A HookedModel from a model, a zoo name (e.g. `concepts-tiny`) or a saved folder (`interp.load`).

    Example:
        >>> model = resolve_model("concepts-tiny")
    """
    return model if isinstance(model, HookedModel) else interp.load(str(model))


def quick_configs() -> dict[str, object]:
    """Method configs for smoke tests and notebooks: few training steps for the trained explainers."""
    return {
        "causalm": registry.get("causalm").config(steps=40),
        "cpm": registry.get("cpm").config(steps=60, n_sources=2),
        "das": registry.get("das").config(steps=60),
        "sae": registry.get("sae").config(steps=100),
    }


def concept_task(task: str | Concepts | None) -> Concepts:
    """The concepts task from a name or instance; other tasks raise `InterpError`."""
    task = get_task("concepts") if task is None else get_task(task) if isinstance(task, str) else task
    if not isinstance(task, Concepts):
        raise InterpError(
            f"task {getattr(task, 'name', task)!r} has no concept annotations or structural counterfactuals; "
            "concept explanations need --task concepts"
        )
    return task


def explain(
    model: HookedModel,
    cfg: ExplainConfig = ExplainConfig(),
    task: str | Concepts | None = None,
    method_configs: Mapping[str, object] | None = None,
    train: ConceptSample | None = None,
    test: ConceptSample | None = None,
) -> ConceptReport:
    """Estimate every edit's ICaCE with each method and score it against the truth.

    `method_configs` maps a method name to its config (defaults otherwise); `train` / `test`
    override the drawn samples (pass `train` with zero rows to see which methods need data).

    Example:
        >>> report = explain(model, ExplainConfig(methods=("inlp", "leace"), n_test=20))
        >>> report.to_dict()["methods"]["leace"]["icace_error"]
    """
    task = concept_task(task)
    test = test if test is not None else task.sample(cfg.n_test, seed=cfg.seed)
    if train is None and cfg.n_train > 0:
        train = task.sample(cfg.n_train, seed=cfg.seed + 1)
    check_model(model, test)
    edits = all_edits(test, cfg.concepts)
    true = true_icace(model, edits)  # [edit, label]
    estimates, scores, seconds = {}, {}, {}
    for name in cfg.methods:
        method = registry.get(name)
        options = (method_configs or {}).get(name) or method.config()
        if cfg.hook is not None and "hook" in {f.name for f in dataclasses.fields(options)}:
            options = dataclasses.replace(options, hook=cfg.hook)
        start = time.perf_counter()
        estimates[name] = method.estimate(model, edits, train, options)
        seconds[name] = time.perf_counter() - start
        scores[name] = metrics(estimates[name], true, edits)
        log.info("%s: ICaCE error %.4f in %.1f s", name, scores[name]["icace_error"], seconds[name])
    return ConceptReport(cfg, edits, true, estimates, scores, seconds)
