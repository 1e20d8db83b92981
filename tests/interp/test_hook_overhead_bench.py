"""The independent hook-overhead harness runs and reports every contender, the PyTorch-hook floor included."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hook_overhead_harness_reports_the_floor(tmp_path):
    out = tmp_path / "hook_overhead.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["--runs", "1", "--calls", "1", "--calls-small", "2", "--out", str(out)]
    subprocess.run(
        [sys.executable, str(ROOT / "experiments/bench/hook_overhead.py"), *args],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=600,
    )
    results = json.loads(out.read_text())
    for shape in ("16x128", "1x16"):
        row = results["shapes"][shape]
        contenders = {"hf_eager", "cache_all", "cache_all_dropped", "cache_no_pattern", "torch_hooks"}
        assert set(row["cpu_ratio_vs_hf"]) == contenders
        assert all(math.isfinite(v) and v > 0 for v in row["cpu_ratio_vs_hf"].values())
        cpu = row["median_cpu_seconds_per_call"]
        floor = (cpu["torch_hooks"] + cpu["cache_all"] - cpu["cache_all_dropped"]) / cpu["hf"]
        assert math.isclose(row["cpu_floor_vs_hf"], floor)
