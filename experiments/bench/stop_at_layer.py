"""stop_at_layer benchmark: writes experiments/bench/results/stop_at_layer[_<device>].json (also
`interp bench --only stop_at_layer`). Method in `interp.bench_stop`.

OMP_WAIT_POLICY=PASSIVE python experiments/bench/stop_at_layer.py [--repeats 7] [--device cuda]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from interp import bench_stop  # noqa: E402
from interp.io import atomic_write_text  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "stop_at_layer.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians over them)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--pos", type=int, default=128)
    parser.add_argument(
        "--out", type=Path, default=None, help="default results/stop_at_layer[_<device>].json"
    )
    args = parser.parse_args()
    cfg = bench_stop.StopBenchConfig(repeats=args.repeats, device=args.device, batch=args.batch, pos=args.pos)
    results = bench_stop.run(cfg)
    suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
    out = args.out or OUT.with_name(f"stop_at_layer{suffix}.json")
    atomic_write_text(out, json.dumps(results, indent=2) + "\n")
    for row in bench_stop.table(results)["rows"]:
        print(*row, sep="\t")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
