"""The TopK training benchmark (`saes.bench`) at toy size, and `interp bench` running added benchmarks."""

import json

import pytest

import interp.commands.bench as bench_command
from interp.cli import main
from saes import bench

TINY = bench.SAEBenchConfig(d_in=16, expansion=4, k=4, batch=64, repeats=1, inner=1, saelens=False)


def test_benchmark_times_every_contender_and_reports_ratios():
    results = bench.run(TINY)
    assert {"ours", "ours_dense", "dense_minimal", "sparse_minimal"} <= set(results["tokens_per_second"])
    assert all(tps > 0 for tps in results["tokens_per_second"].values())
    assert {"ours_vs_dense_minimal", "ours_vs_ours_dense"} <= set(results["ratios"])
    json.dumps(results)  # JSON-ready
    table = bench.table(results)
    assert table["rows"] and all(len(row) == len(table["columns"]) for row in table["rows"])


class _EntryPoint:
    def __init__(self, name, fn):
        self.name, self._fn = name, fn

    def load(self):
        return self._fn


@pytest.fixture
def fake_benchmark(monkeypatch):
    calls = []

    def fake(quick):
        calls.append(quick)
        return {"value": 3, "table": {"title": "fakebench", "columns": ["a", "b"], "rows": [["x", "1"]]}}

    monkeypatch.setattr(bench_command, "entry_points", lambda group: [_EntryPoint("fake", fake)])
    return calls


def run_cli(args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_interp_bench_runs_added_benchmarks(fake_benchmark, capsys):
    assert run_cli(["bench", "--only", "fake", "--quick", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "benchmarks": {
            "fake": {"value": 3, "table": {"title": "fakebench", "columns": ["a", "b"], "rows": [["x", "1"]]}}
        }
    }
    assert run_cli(["bench", "--only", "fake"]) == 0
    assert "fakebench" in capsys.readouterr().out
    assert fake_benchmark == [True, False]


def test_interp_bench_unknown_benchmark_is_a_usage_error(fake_benchmark, capsys):
    assert run_cli(["bench", "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "fake" in err and "Traceback" not in err
    assert fake_benchmark == []
