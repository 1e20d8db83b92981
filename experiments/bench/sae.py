"""TopK SAE training benchmark: writes experiments/results/bench_sae.json (also `interp bench --only sae`).

Ours (the full `saes.Trainer` step on the sparse TopK path) against SAELens's TopK training step and a
minimal dense PyTorch TopK step, interleaved, medians; see `saes.bench` for the method.

OMP_WAIT_POLICY=PASSIVE python experiments/bench/sae.py [--repeats 7] [--inner 3] [--device cuda]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from interp.io import atomic_write_json  # noqa: E402
from saes import bench  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "bench_sae.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians over them)")
    parser.add_argument("--inner", type=int, default=3, help="consecutive steps timed per round")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help=f"default {OUT} (or bench_sae_<device>.json)")
    args = parser.parse_args()
    results = bench.run(
        bench.SAEBenchConfig(repeats=args.repeats, inner=args.inner, device=args.device),
        progress=lambda s: print(s, flush=True),
    )
    out = args.out or (
        OUT if args.device == "cpu" else OUT.with_name(f"bench_sae_{args.device.split(':')[0]}.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, results)
    for name, tps in results["tokens_per_second"].items():
        print(f"{name:22s} {tps:10,.0f} tokens/s")
    for name, ratio in results["ratios"].items():
        print(f"{name:36s} {ratio:.2f}x")
    env = results["environment"]
    print("load average before/after:", env["loadavg_1_5_15_before"], env["loadavg_1_5_15_after"])


if __name__ == "__main__":
    main()
