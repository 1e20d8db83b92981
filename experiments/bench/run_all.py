"""Run every benchmark under experiments/bench/ on one device, each writing its JSON, plus a summary.

    python experiments/bench/run_all.py --device cuda [--out DIR] [--budget 300]

Each benchmark runs as its own process (so each sets its thread policy before torch is imported), with
repetition counts sized so the whole set takes a few minutes on a GPU; a benchmark that fails or runs
past its share of `--budget` seconds is recorded as such in `run_all_<device>.json` and the rest still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from interp.io import atomic_write_json

HERE = Path(__file__).resolve().parent

# (script, arguments, share of the time budget)
BENCHMARKS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("hooks.py", ("--repeats", "7"), 0.10),
    ("hook_overhead.py", ("--runs", "9"), 0.15),
    ("stop_at_layer.py", ("--repeats", "7"), 0.10),
    ("patching.py", ("--repeats", "7"), 0.15),
    ("sae.py", ("--repeats", "5", "--inner", "5"), 0.15),
    ("sae_e2e.py", ("--tokens", "400000", "--rounds", "3"), 0.35),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for the whole set")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tag = args.device.split(":")[0]
    summary: dict = {"device": args.device, "benchmarks": {}}
    for script, extra, share in BENCHMARKS:
        if not (HERE / script).is_file():
            continue
        out = args.out / f"{Path(script).stem}_{tag}.json"
        cmd = [sys.executable, str(HERE / script), "--device", args.device, "--out", str(out), *extra]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=share * args.budget)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"
        except subprocess.TimeoutExpired:
            status = f"timed out after {share * args.budget:.0f} s"
        seconds = time.perf_counter() - start
        summary["benchmarks"][script] = {"status": status, "seconds": round(seconds, 1), "json": str(out)}
        print(f"{script:20s} {status[:60]:60s} {seconds:6.1f} s", flush=True)
    atomic_write_json(args.out / f"run_all_{tag}.json", summary)


if __name__ == "__main__":
    main()
