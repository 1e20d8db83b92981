"""CausalModel semantics on toys, counterfactual sampling, bad models, and the task models' agreement
with the `interp.tasks` generators they describe."""

from __future__ import annotations

import numpy as np
import pytest

from circuits.abstraction import CausalModel, counterfactuals, high_level
from interp.errors import InterpError
from interp.tasks import get


def toy() -> CausalModel:
    # a, b, c inputs; s = a + b; p = s * c; out = p > 1
    return CausalModel(
        values={
            "a": (0, 1),
            "b": (0, 1),
            "c": (0, 1, 2),
            "s": (0, 1, 2),
            "p": (0, 1, 2, 3, 4),
            "out": (True, False),
        },
        parents={"s": ("a", "b"), "p": ("s", "c"), "out": ("p",)},
        mechanisms={"s": lambda a, b: a + b, "p": lambda s, c: s * c, "out": lambda p: p > 1},
    )


def test_structure_and_run():
    cm = toy()
    assert cm.inputs == ("a", "b", "c")
    assert cm.outputs == ("out",)
    assert cm.intermediates == ("s", "p")
    assert cm.ancestors("p") == {"s", "a", "b", "c"}
    assert cm.run({"a": 1, "b": 1, "c": 2}) == {"a": 1, "b": 1, "c": 2, "s": 2, "p": 4, "out": True}


def test_intervention_cuts_parents_and_propagates():
    cm = toy()
    setting = cm.run({"a": 1, "b": 1, "c": 2}, interventions={"s": 0})
    assert setting["s"] == 0 and setting["p"] == 0 and setting["out"] is False
    # intervening downstream overrides upstream interventions
    assert cm.run({"a": 0, "b": 0, "c": 0}, interventions={"s": 2, "p": 3})["p"] == 3


def test_interchange_single_and_multi_source():
    cm = toy()
    base, s1, s2 = {"a": 0, "b": 0, "c": 2}, {"a": 1, "b": 1, "c": 0}, {"a": 0, "b": 1, "c": 1}
    # s takes its value on s1 (2); c stays the base's (2)
    assert cm.interchange(base, {"s": s1})["p"] == 4
    # multi-source: s from s1 (2), c from s2 (1)
    multi = cm.interchange(base, {"s": s1, "c": s2})
    assert multi["p"] == 2
    # ... equals the sequential composition for variables that are not ancestors of each other
    after_s = cm.run(base, {"s": cm.run(s1)["s"]})
    sequential = cm.run(base, {"s": after_s["s"], "c": cm.run(s2)["c"]})
    assert multi == sequential
    # when one variable is downstream of the other, the downstream source decides
    assert cm.interchange(base, {"s": s1, "p": s2})["p"] == cm.run(s2)["p"]


def test_counterfactual_sampling_labels_and_filters():
    cm = high_level("hierarchical_equality").causal
    examples = cm.sample_counterfactuals(200, ["left", "right"], seed=0)
    for e in examples:
        fixed = {"left": cm.run(e.sources["left"])["left"], "right": cm.run(e.sources["right"])["right"]}
        assert e.setting == cm.run(e.base, fixed)
        assert e.output == e.setting["output"]
    outputs = [e.output for e in examples]
    assert outputs.count(True) == outputs.count(False)  # balanced round-robin
    changed = cm.sample_counterfactuals(50, ["left"], seed=1, changes=True)
    assert all(e.output != cm.run(e.base)["output"] for e in changed)
    same = cm.sample_counterfactuals(50, ["left"], seed=1, changes=False)
    assert all(e.output == cm.run(e.base)["output"] for e in same)
    # deterministic in the seed
    again = cm.sample_counterfactuals(200, ["left", "right"], seed=0)
    assert [e.setting for e in again] == [e.setting for e in examples]


def test_default_sampler_is_uniform_over_value_sets():
    cm = toy()
    rng = np.random.default_rng(0)
    draws = [cm.sample_input(rng) for _ in range(300)]
    assert {d["c"] for d in draws} == {0, 1, 2}
    assert set(draws[0]) == {"a", "b", "c"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(values={"x": (0,), "y": (0,)}, parents={"y": ("x",)}, mechanisms={}), "no mechanism"),
        (dict(values={"x": (0,), "y": (0,)}, parents={"x": ("y",), "y": ("x",)},
              mechanisms={"x": lambda y: y, "y": lambda x: x}), "cycle"),
        (dict(values={"x": (0,), "y": (0,)}, parents={"y": ("z",)}, mechanisms={"y": lambda z: z}), "unknown variable 'z'"),
        (dict(values={"x": (0,), "y": (0,)}, mechanisms={"y": lambda: 0}), "no parents"),
        (dict(values={"x": ()}), "empty value set"),
    ],
)  # fmt: skip
def test_bad_models_raise_clear_errors(kwargs, message):
    with pytest.raises(InterpError, match=message):
        CausalModel(**kwargs)


def test_bad_runs_raise_clear_errors():
    cm = toy()
    with pytest.raises(InterpError, match="no value"):
        cm.run({"a": 1, "b": 0})
    with pytest.raises(InterpError, match="not in the value set"):
        cm.run({"a": 1, "b": 0, "c": 7})
    with pytest.raises(InterpError, match="unknown variable"):
        cm.run({"a": 1, "b": 0, "c": 0}, interventions={"q": 1})
    with pytest.raises(InterpError, match="no high-level model"):
        high_level("nope")


def _settings(task: str, batch) -> list[dict]:
    v = batch.variables
    n = len(batch)
    if task == "hierarchical_equality":
        return [{k: v[k][i] for k in "WXYZ"} for i in range(n)]
    if task == "ioi":
        out = []
        for i in range(n):
            io, s = v["IO"][i], v["S"][i]
            a, b = (io, s) if v["order"][i] == "ABBA" else (s, io)
            out.append(
                {
                    "A": a,
                    "B": b,
                    "C": s,
                    "template": v["template"][i],
                    "P": v["P"][i],
                    "V": v["V"][i],
                    "O": v["O"][i],
                }
            )
        return out
    if task == "greater_than":
        return [{"century": v["century"][i], "yy": v["yy"][i], "noun": v["noun"][i]} for i in range(n)]
    return [{"subject": v["subject"][i], "relation": v["relation"][i]} for i in range(n)]


@pytest.mark.parametrize("task", ["hierarchical_equality", "ioi", "greater_than", "facts"])
def test_task_models_match_the_task_generators(task):
    tm = high_level(task)
    batch = get(task).generate(32, seed=3)
    settings = _settings(task, batch)
    ids, positions = tm.encode_many(settings)
    assert ids.tolist() == batch.clean.tolist()
    for name, pos in batch.positions.items():
        assert positions[name].tolist() == pos.tolist()
    codes = tm.codes([tm.causal.run(s)[tm.output] for s in settings])
    if task == "greater_than":
        assert codes.tolist() == batch.variables["yy"]
    else:
        assert codes.tolist() == batch.answer.tolist()
    data = counterfactuals(tm, tm.causal.intermediates[:1] or tm.causal.outputs, 16, seed=0, shift=2)
    assert data.base_ids.shape[1] == batch.clean.shape[1] + 2
