"""SAE training across ranks: peak memory per rank and throughput on 1, 2 and 4 ranks for the three
placements of `saes.ParallelTrainer` (data-parallel, hooks distributed over ranks, each SAE's latents
split across ranks), beside sparsify's published figures.

Each configuration is one `torchrun --standalone` job training one TopK SAE per hook on synthetic
activations (Gaussian, generated on the device each step; no model forward). Per-rank batch is fixed
(weak scaling: the global batch grows with the ranks), so the scaling ratio is
throughput(R ranks) / throughput(1 rank), ideally R. Configurations are interleaved over rounds and
the step time is the median over timed steps and rounds.

    python experiments/bench/distributed_sae.py                       # CPU, tiny sizes (2 gloo ranks max by default)
    python experiments/bench/distributed_sae.py --device cuda --out experiments/bench/results/distributed_sae_cuda.json

On one GPU the 2- and 4-rank jobs share it (gloo, collectives staged through host memory; nccl refuses
two ranks on one GPU): peak memory per rank is meaningful there, throughput scaling is not (it needs
one GPU per rank: `--backend nccl` on a multi-GPU machine).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from interp.io import atomic_write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "experiments" / "bench" / "results" / "distributed_sae.json"

SPARSIFY_REFERENCE = {
    "source": "sparsify README (EleutherAI), SmolLM2-135M, 30 hookpoints, expansion 32, k 32, A100 GPUs",
    "data_parallel_gib_per_gpu": 9.0,
    "data_parallel_s_per_step": 0.33,
    "distributed_modules_gib_per_gpu": [1.7, 3.7],
    "ours_comparable": "distribute_hooks is sparsify's --distribute_modules; distribute_latents has no sparsify figure",
    "note": "their step includes the model forward; ours times SAE training on synthetic activations only",
}

DEFAULTS = {  # device -> sizes; cuda matches sparsify's SmolLM2-135M set-up (d_model 576, 30 hooks)
    "cpu": dict(hooks=4, d_in=64, expansion=8, k=8, batch_per_rank=1024, steps=8, ranks="1,2", budget_s=3600),
    "cuda": dict(
        hooks=30, d_in=576, expansion=32, k=32, batch_per_rank=4096, steps=5, ranks="1,2,4", budget_s=210
    ),
}


# ---- one rank of one configuration -----------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    import saes
    from saes.distributed import init_distributed
    from saes.memory import state_bytes

    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    ctx = init_distributed(args.backend)
    device = torch.device("cpu")
    if args.device == "cuda":  # nccl: one GPU per rank (set by init_distributed); gloo: all share GPU 0
        device = torch.device("cuda", torch.cuda.current_device() if args.backend == "nccl" else 0)
    hooks = [f"blocks.{i}.hook_resid_post" for i in range(args.hooks)]
    d_sae = args.d_in * args.expansion
    cfgs = [saes.SAEConfig("topk", d_in=args.d_in, d_sae=d_sae, k=args.k, hook_in=h) for h in hooks]
    tc = saes.TrainConfig(lr=2e-4, total_steps=args.steps, progress=False, log_every=10**9)
    trainer = saes.ParallelTrainer(cfgs, tc, dist=ctx, placement=args.placement, device=device)
    stamps: list[float] = []

    def batches():
        g = torch.Generator(device=device).manual_seed(1000 + ctx.rank)
        while True:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(time.perf_counter())
            yield {h: torch.randn(args.batch_per_rank, args.d_in, generator=g, device=device) for h in hooks}

    trainer.fit(batches())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    stamps.append(time.perf_counter())
    durations = [b - a for a, b in zip(stamps, stamps[1:], strict=False)][: args.steps]  # step i: batch i
    steps = durations[1 + args.warmup :]  # the first step also initialises
    state = sum(state_bytes(t.sae, t.optimizer) for t in trainer.trainers.values())
    states = ctx.gather(torch.tensor([state], dtype=torch.int64)).tolist()
    if ctx.is_main:
        record = {
            "sae_state_gib_per_rank": [round(b / 1024**3, 4) for b in states],
            "placement": args.placement,
            "ranks": ctx.world_size,
            "step_s": steps,
            "global_batch": args.batch_per_rank * ctx.world_size,
            "peak_memory": [m.to_dict() for m in trainer.peak_memory],
            "saes_on_rank0": len(trainer.trainers),
        }
        atomic_write_json(args.record, record)


# ---- the driver ---------------------------------------------------------------------------------
def run_one(args: argparse.Namespace, placement: str, ranks: int, record: Path, timeout: float) -> dict:
    """One torchrun job; a failure or a timeout is recorded (and reported) instead of ending the benchmark."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    cmd += [__file__, "--worker", "--record", str(record), "--placement", placement]
    for name in ("device", "backend", "hooks", "d_in", "expansion", "k", "batch_per_rank", "steps", "warmup"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"placement": placement, "ranks": ranks, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"placement": placement, "ranks": ranks, "error": proc.stderr[-2000:]}
    return json.loads(record.read_text())


def summarise(runs: list[dict], args: argparse.Namespace) -> dict:
    table: dict[str, dict[int, dict]] = {}
    failed = [{k: run[k] for k in ("placement", "ranks", "error")} for run in runs if "error" in run]
    for run in (r for r in runs if "error" not in r):
        entry = table.setdefault(run["placement"], {}).setdefault(
            run["ranks"], {"step_s": [], "peak": [], "global_batch": run["global_batch"]}
        )
        entry["state"] = run["sae_state_gib_per_rank"]
        entry["step_s"] += run["step_s"]
        entry["peak"].append([m["peak_gib"] for m in run["peak_memory"]])
        entry["measure"] = run["peak_memory"][0]["measure"]
        entry["saes_on_rank0"] = run["saes_on_rank0"]
    rows = []
    for placement, by_ranks in table.items():
        base = None
        for ranks in sorted(by_ranks):
            e = by_ranks[ranks]
            step = statistics.median(e["step_s"])
            tps = e["global_batch"] / step
            base = base or tps
            peak_per_rank = [max(col) for col in zip(*e["peak"], strict=True)]
            rows.append(
                {
                    "placement": placement,
                    "ranks": ranks,
                    "saes_on_rank0": e["saes_on_rank0"],
                    "global_batch": e["global_batch"],
                    "step_s_median": round(step, 4),
                    "tokens_per_s": round(tps, 1),
                    "scaling_ratio": round(tps / base, 3),
                    "peak_gib_per_rank": [round(p, 3) for p in peak_per_rank],
                    "sae_state_gib_per_rank": e["state"],
                    "memory_measure": e["measure"],
                }
            )
    return {"rows": rows, "failed_or_skipped": failed}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    parser.add_argument("--ranks", default=None, help="comma-separated rank counts (default per device)")
    parser.add_argument("--placements", default="data_parallel,distribute_hooks,distribute_latents")
    for name in ("hooks", "d_in", "expansion", "k", "batch_per_rank", "steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None)
    parser.add_argument("--warmup", type=int, default=1, help="steps not timed after the first")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds over the configurations")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per torchrun job")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="stop starting jobs after this many seconds (cuda: 210)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--placement", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name, value in DEFAULTS[args.device].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if args.worker:
        worker(args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    ranks = [int(r) for r in str(args.ranks).split(",")]
    placements = args.placements.split(",")
    runs, started, load_before = [], time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for r in ranks:  # interleaved: every placement at each rank count, every round
                for placement in placements:
                    left = args.budget_s - (time.time() - started)
                    if left < 15:
                        runs.append(
                            {"placement": placement, "ranks": r, "error": "skipped: --budget-s spent"}
                        )
                        continue
                    record = Path(tmp) / f"{placement}_{r}_{round_}.json"
                    runs.append(run_one(args, placement, r, record, min(args.timeout, left)))
                    last = runs[-1]
                    if "error" in last:
                        print(f"{placement:18s} ranks={r} FAILED: {last['error'][-300:]}", flush=True)
                    else:
                        print(
                            f"{placement:18s} ranks={r} step={statistics.median(last['step_s']):.4f}s "
                            f"peak GiB per rank={[m['peak_gib'] for m in last['peak_memory']]}",
                            flush=True,
                        )
                    write_result(args, runs, started, load_before)  # a partial file survives a kill
    result = write_result(args, runs, started, load_before)
    for row in result["rows"]:
        print(
            f"{row['placement']:18s} ranks={row['ranks']} {row['tokens_per_s']:12,.0f} tokens/s "
            f"scaling x{row['scaling_ratio']:.2f}  peak GiB/rank {row['peak_gib_per_rank']} "
            f"SAE state GiB/rank {row['sae_state_gib_per_rank']}"
        )
    print(f"wrote {args.out}")


def write_result(args: argparse.Namespace, runs: list[dict], started: float, load_before: tuple) -> dict:
    from interp.io import package_versions

    result = {
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "backend": args.backend,
        "config": {
            n: getattr(args, n)
            for n in ("hooks", "d_in", "expansion", "k", "batch_per_rank", "steps", "warmup", "rounds")
        },
        **summarise(runs, args),
        "sparsify_reference": SPARSIFY_REFERENCE,
        "environment": {
            "cpu_count": os.cpu_count(),
            "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
            "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(time.time() - started, 1),
            "versions": package_versions(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
