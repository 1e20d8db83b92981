"""Activation-patching sweep benchmark: writes experiments/bench/results/patching.json (also
`interp bench --only patching`).

The full resid_pre layer x position sweep on a tiny GPT-2 (4 layers, 16 positions), ours against
TransformerLens's `get_act_patch_resid_pre` on the same weights, for 1 and 8 clean/corrupted pairs,
interleaved, medians; see `circuits.patching.bench` for the method.

OMP_WAIT_POLICY=PASSIVE python experiments/bench/patching.py [--repeats 7] [--device cuda]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from circuits.patching import bench  # noqa: E402
from interp.io import atomic_write_text  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "patching.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians over them)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--differ-at", type=int, default=3, help="position where corrupted prompts differ")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"default {OUT}, or patching_<device>_differ_at_<n>.json"
    )
    args = parser.parse_args()
    device = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
    differ = "" if args.differ_at == 3 else f"_differ_at_{args.differ_at}"
    out = args.out or OUT.with_name(f"patching{device}{differ}.json")
    results = bench.run(
        bench.PatchingBenchConfig(repeats=args.repeats, device=args.device, differ_at=args.differ_at),
        progress=lambda s: print("done", s),
    )
    atomic_write_text(out, json.dumps(results, indent=2))
    spec = bench.table(results)
    print(spec["title"])
    print(" | ".join(spec["columns"]))
    for row in spec["rows"]:
        print(" | ".join(row))
    env = results["environment"]
    print("load average before/after:", env["loadavg_1_5_15_before"], env["loadavg_1_5_15_after"])


if __name__ == "__main__":
    main()
