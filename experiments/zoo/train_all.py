"""Retrain the shipped zoo models into `interp/zoo/models/` (or `--out`) from their recipes (every
registered recipe, those of the upper packages included).

    python experiments/zoo/train_all.py                  # every recipe
    python experiments/zoo/train_all.py ioi-tiny facts-tiny --out /tmp/zoo

Updates `experiments/zoo/summary.json` (name -> accuracy / val_loss / train_seconds / size).
"""

from __future__ import annotations

import argparse
import json
import logging
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import interp.zoo as zoo  # noqa: E402
from interp.io import atomic_write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(zoo.recipes()))
    parser.add_argument("--out", type=Path, default=zoo.MODELS_DIR)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    summary_path = Path(__file__).with_name("summary.json")
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in args.names:
        card = zoo.train(name, args.out / name, seed=args.seed, progress=False)
        size = (args.out / name / "model.safetensors").stat().st_size
        summary[name] = {k: card[k] for k in ("accuracy", "train_seconds", "n_params") if k in card} | {
            "val_loss": card.get("val_loss"),
            "weights_mb": round(size / 1e6, 2),
        }
        logging.info("%s: %s", name, summary[name])
        atomic_write_json(summary_path, summary)


if __name__ == "__main__":
    main()
