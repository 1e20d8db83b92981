"""The stop_at_layer benchmark at toy size: it runs and reports what it claims (no timing asserted)."""

from __future__ import annotations

from interp import bench_stop


def test_stop_benchmark_reports_ratios_and_ideals():
    cfg = bench_stop.StopBenchConfig(
        n_layers=4, d_model=32, n_heads=2, d_mlp=64, vocab=64, batch=1, pos=8, layers=(0, 2), repeats=1
    )
    results = bench_stop.run(cfg)
    assert set(results["layers"]) == {"0", "2"}
    assert results["layers"]["2"]["ideal_ratio"] == 3 / 4
    for entry in results["layers"].values():
        assert entry["ratio"] > 0 and set(entry["median_seconds"]) == {"full", "stopped"}
    spec = bench_stop.table(results)
    assert [row[0] for row in spec["rows"]] == ["blocks.0.hook_resid_post", "blocks.2.hook_resid_post"]
