"""Feature-intervention agreement of attribution graphs on shakespeare-tiny: writes
experiments/results/attribution_agreement.json.

Trains a per-layer TopK transcoder set and a cross-layer one (fixed seed), traces a few prompts from the
corpus, and for each graph ablates (x0) and doubles (x2) the 5 most influential features in the real
model, comparing the measured change of downstream features and logits with the graph's prediction
(`circuits.attribution.check_interventions`). Also reports the same with norm denominators (and
attention) frozen, to say where disagreement comes from.

OMP_WAIT_POLICY=PASSIVE python experiments/attribution_agreement.py [--tokens 60000]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

import interp
from circuits.attribution import ReplacementModel, attribute, check_interventions, prune, scores
from interp.io import atomic_write_json
from saes import TrainConfig, train_transcoder_set

OUT = Path(__file__).resolve().parent / "results" / "attribution_agreement.json"
PROMPTS = (
    "To be, or not to be, that is the",
    "Now is the winter of our discontent made glorious",
    "Friends, Romans, countrymen, lend me your",
    "All the world's a stage, and all the men and",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=60_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = interp.load("shakespeare-tiny", device=args.device)
    results: dict = {"prompts": list(PROMPTS), "sets": {}}
    for kind, cross in (("per_layer_topk", False), ("cross_layer_topk", True)):
        tc = TrainConfig(lr=3e-3, batch_size=256, total_tokens=args.tokens, progress=False, seed=0)
        tset = train_transcoder_set(
            model,
            interp.data.shakespeare(),
            k=16,
            expansion=4,
            tokens=args.tokens,
            train_cfg=tc,
            cross_layer=cross,
            device=args.device,
        )
        rm = ReplacementModel(model, tset.to(args.device))
        per_prompt = []
        for prompt in PROMPTS:
            graph = attribute(rm, prompt)
            pruned = prune(graph)
            check = check_interventions(rm, graph, pruned, top=5, factors=(0.0, 2.0))
            per_prompt.append(
                {
                    "prompt": prompt,
                    **scores(graph),
                    "n_features": graph.n_features,
                    "correlation_by_freeze": check["correlation_by_freeze"],
                    "n_pairs": check["n_pairs"],
                }
            )
        summary = {
            freeze: {
                target: statistics.median(
                    p["correlation_by_freeze"][freeze][target]
                    for p in per_prompt
                    if p["correlation_by_freeze"][freeze][target] is not None
                )
                for target in ("logits", "features", "all")
            }
            for freeze in ("none", "norms", "all")
        }
        results["sets"][kind] = {
            "median_correlation": summary,
            "median_replacement_score": statistics.median(p["replacement_score"] for p in per_prompt),
            "median_completeness_score": statistics.median(p["completeness_score"] for p in per_prompt),
            "per_prompt": per_prompt,
        }
        print(kind, json.dumps(summary), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)


if __name__ == "__main__":
    main()
