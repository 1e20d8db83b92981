"""Hook-overhead benchmark: writes experiments/bench/results/hooks.json (same as `interp bench --json`).

OMP_WAIT_POLICY=PASSIVE python experiments/bench/hooks.py [--repeats 15] [--device cuda]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from interp import bench  # noqa: E402
from interp.io import atomic_write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="default results/hooks[_<device>].json")
    args = parser.parse_args()
    results = bench.run(
        bench.BenchConfig(repeats=args.repeats, device=args.device),
        progress=lambda key: print("done", key, flush=True),
    )
    suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
    out = args.out or Path(__file__).parent / "results" / f"hooks{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, results)
    for key, entry in results["shapes"].items():
        print(key, {name: round(ratio, 3) for name, ratio in entry["ratio_vs_hf"].items()})


if __name__ == "__main__":
    main()
