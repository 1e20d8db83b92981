"""The discovery benchmark (`circuits.discovery.benchmark`, `experiments/discovery_benchmark.py`):
AUROC on the hand-set induction model, the ground-truth cases, interleaved timing, and the script's
JSON, figure and tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from circuits.discovery import benchmark, handset

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "discovery_benchmark.py"


@pytest.fixture(scope="module")
def hand_case():
    return benchmark.load_case(handset.NAME)


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("discovery_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ground_truth_cases_come_with_task_ablation_and_circuit(hand_case):
    names = benchmark.ground_truth_models()
    assert names[0] == handset.NAME and {"greater-than-siit", "hier-eq-siit"} <= set(names)
    assert (hand_case.task, hand_case.ablation) == ("induction", "resample")  # from the card
    assert hand_case.truth.edge_pairs() == handset.TRUE_CIRCUIT.edge_pairs()
    siit = benchmark.load_case("greater-than-siit")
    assert (siit.task, siit.ablation) == ("greater_than", "corrupted")  # no card ablation
    assert {f"{e.src}->{e.dst}" for e in siit.truth.edges} == {"embed->L0.H1", "L0.H1->MLP0", "MLP0->logits"}


def test_handset_aurocs(hand_case):
    """Edge methods rank the five true edges first (AUROC 1, ranks 1-5 of 26 pairs); node attribution
    ranks the true nodes first, but its derived edge scores tie L1.H0->MLP1 and MLP1->logits with
    false edges between true nodes: 90.5 of the 5 x 21 true-false pairs are ordered right."""
    acc = benchmark.accuracy(hand_case, n=16, seeds=(0, 1))
    for method in ("acdc", "eap", "eap-ig"):
        assert acc[method]["edge_auroc"] == [1.0, 1.0]
        assert acc[method]["node_auroc_mean"] == 1.0
        assert sorted(acc[method]["true_edge_ranks"].values()) == pytest.approx([1, 2, 3, 4, 5], abs=0.5)
        roc = acc[method]["roc"]
        assert (0.0, 1.0) in zip(roc["fpr"], roc["tpr"], strict=True)  # every true edge before any false one
    node = acc["node"]
    assert node["node_auroc"] == [1.0, 1.0]
    assert node["edge_auroc_mean"] == pytest.approx(90.5 / 105) and node["n_edges"] == 26
    assert acc["acdc"]["forward_passes"] > 0
    assert acc["eap"]["clean_metric"][0] == pytest.approx(acc["eap-ig"]["clean_metric"][0])


def test_timing_interleaves_methods_with_the_baseline(hand_case):
    t = benchmark.timing(hand_case, {"eap": {}, "eap-ig": {"steps": 5}}, n=16, repeats=3)
    assert t["forward_backward_seconds"] > t["forward_seconds"] > 0
    for method in ("eap", "eap-ig"):
        row = t["methods"][method]
        assert len(row["ratios"]) == 3 and row["seconds"] > 0 and row["ratio"] > 0
    assert t["methods"]["eap-ig"]["seconds"] > t["methods"]["eap"]["seconds"]  # 5 passes against 1


def test_script_writes_json_figure_and_tables(script, tmp_path):
    out = tmp_path / "bench"
    results = script.main(
        ["--models", handset.NAME, "--n", "16", "--seeds", "0", "--timing-n", "16", "--repeats", "1"]
        + ["--ablations", "corrupted", "--default-models", "--out", str(out)]
    )
    saved = json.loads(out.with_suffix(".json").read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    entry = saved["models"][handset.NAME]
    assert list(entry["accuracy"]) == ["resample", "corrupted"]  # own ablation first
    assert entry["accuracy"]["resample"]["eap-ig"]["edge_auroc_mean"] == 1.0
    assert saved["targets"]["eap_ig_mean_edge_auroc"] == {"value": 1.0, "target": 0.9, "met": True}
    assert {"python", "torch"} <= set(saved["versions"])
    row = "| handset-induction | resample (own) | 1.000 / 1.000 | 1.000 / 1.000 | 1.000 / 1.000 | 0.862 / 1.000 |"
    assert row in results["table"]
    # the default selection of every method is the true circuit (ACDC: exactly its 5 edges)
    selection = saved["selection_faithfulness"][handset.NAME]
    assert selection["acdc"]["n_edges"] == 5 and not selection["eap-ig"]["widened"]
    assert all(r["faithfulness"] == pytest.approx(1.0, abs=1e-3) for r in selection.values())
    assert saved["default_method"]["best"] in ("acdc", "eap", "eap-ig", "node")
    assert "| handset-induction | 1.000 (5) |" in results["table"]
