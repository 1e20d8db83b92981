"""Resident memory of a long `run_batched` sweep on CPU, against its memory budget.

Runs N intervention sets on a tiny GPT-2 at a budget of 16 sets per pass and prints the RSS growth;
`--no-fix` skips the fixed mmap threshold (`interp.batched.fix_mmap_threshold`) for comparison.
Run each mode in its own process (the setting is per process):

    python experiments/bench/run_batched_rss.py --sets 2000
    python experiments/bench/run_batched_rss.py --sets 2000 --no-fix
"""

from __future__ import annotations

import argparse
import json
import resource

import torch
import transformers as T

import interp
import interp.batched as batched


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2000)
    parser.add_argument("--no-fix", action="store_true")
    args = parser.parse_args()
    if args.no_fix:
        batched.fix_mmap_threshold = lambda *a, **k: None
    torch.manual_seed(0)
    cfg = T.GPT2Config(
        n_layer=2, n_embd=64, n_head=4, vocab_size=97, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    model = interp.HookedModel(T.GPT2LMHeadModel(cfg).eval())
    ids = torch.randint(0, 97, (4, 32))
    hook = "blocks.0.hook_resid_post"
    sets = [[interp.Scale(hook, factor=1.0 + i * 1e-4, positions=(i % 32,))] for i in range(args.sets)]
    budget = 16 * ids.shape[0] * batched.bytes_per_example(model, ids.shape[1])
    start = rss_mib()
    model.run_batched(
        ids, sets, reduce=lambda logits: logits[:, -1, :5].mean().detach(), memory_budget=budget
    )
    result = {
        "sets": args.sets,
        "fixed_mmap_threshold": not args.no_fix,
        "budget_mib": round(budget / 2**20, 1),
        "rss_growth_mib": round(rss_mib() - start, 1),
        "peak_growth_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
