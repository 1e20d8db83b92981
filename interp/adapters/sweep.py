"""The registry sweep: every causal-LM config class transformers ships, built tiny and checked.

For each `model_type` in transformers' causal-LM auto mapping, build a random-init model from a small
config (2 blocks, d_model 64, 4 heads, 2 key/value heads, eager attention, weights perturbed so norms
and biases matter), wrap it, and classify it:
- "exact": wrapped, and `interp.adapters.verify` finds nothing wrong;
- "refused": wrapping raised one clear `InterpError` (no table, a failed self-check, a variant refused);
- "wrong": wrapped, but a check failed (must never happen);
- "not built": transformers could not build it small offline (needs remote code, a sub-model, a
  tokenizer or kernels); these are not counted.
`python -m interp.adapters.sweep [--json PATH]` prints the table.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from interp.errors import InterpError

VOCAB = 97
MAX_PARAMS = 3_000_000
_SMALL = {
    "num_hidden_layers": 2, "n_layer": 2, "num_layers": 2, "n_layers": 2,
    "hidden_size": 64, "n_embd": 64, "d_model": 64,
    "num_attention_heads": 4, "n_head": 4, "num_heads": 4, "n_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 96, "n_inner": 96, "ffn_dim": 96, "d_ff": 96,
    "head_dim": 16,
    "vocab_size": VOCAB,
    "max_position_embeddings": 64, "n_positions": 64, "n_ctx": 64,
    "num_local_experts": 4, "num_experts": 4, "n_routed_experts": 4, "num_experts_per_tok": 2,
    "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32,
    "rotary_dim": 8,
    "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0, "decoder_start_token_id": 0,
}  # fmt: skip


@dataclass(frozen=True)
class Row:
    model_type: str
    status: str  # exact | refused | wrong | not built
    family: str = ""  # the table used, when wrapped
    matched: str = ""  # "table" or "structure"
    detail: str = ""  # the refusal, the failed checks, or why it was not built


def tiny_model(model_type: str) -> torch.nn.Module:
    """A small random-init causal LM of `model_type`, eager attention, eval mode, perturbed weights."""
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config_cls = CONFIG_MAPPING[model_type]
    defaults = config_cls()
    kwargs = {
        k: v
        for k, v in _SMALL.items()
        if hasattr(defaults, k) and not isinstance(getattr(config_cls, k, None), property)
    }
    if hasattr(defaults, "attention_types"):  # GPT-Neo: one entry per layer
        kwargs["attention_types"] = [[["global", "local"], 1]]
    config = config_cls(**kwargs)
    config._attn_implementation = "eager"
    with torch.device("meta"):  # count first: some sub-configs ignore the small sizes
        n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    if n_params > MAX_PARAMS:
        raise ValueError(
            f"{n_params / 1e6:.0f}M parameters at the small sizes (sub-configs keep their defaults)"
        )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.is_floating_point():
                param.add_(0.05 * torch.randn(param.shape, generator=generator).to(param.dtype))
    model = model.float().eval()
    with torch.no_grad():  # transformers itself must run it
        model(input_ids=torch.randint(1, VOCAB, (1, 5), generator=generator))
    return model


def classify(model_type: str) -> Row:
    from interp.adapters.verify import verify
    from interp.hooked import HookedModel

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf = tiny_model(model_type)
    except Exception as err:  # noqa: BLE001 (transformers raises anything when a config cannot be small)
        return Row(model_type, "not built", detail=f"{type(err).__name__}: {str(err)[:160]}")
    try:
        model = HookedModel(hf)
    except InterpError as err:
        return Row(model_type, "refused", detail=str(err)[:300])
    vocab = min(VOCAB, model.cfg.d_vocab)
    tokens = torch.randint(1, vocab, (2, 7), generator=torch.Generator().manual_seed(1))
    corrupted = torch.randint(1, vocab, (2, 7), generator=torch.Generator().manual_seed(2))
    try:
        failures = verify(model, tokens, corrupted)
    except Exception as err:  # noqa: BLE001 (a crash under a table is a wrong table)
        failures = [f"{type(err).__name__}: {str(err)[:200]}"]
    status = "wrong" if failures else "exact"
    return Row(model_type, status, model.cfg.family, model.cfg.matched, "; ".join(failures))


def causal_lm_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def sweep(model_types: list[str] | None = None, progress: bool = True) -> list[Row]:
    """Classify every causal-LM `model_type` (or those given)."""
    types = causal_lm_types() if model_types is None else model_types
    return [classify(t) for t in tqdm(types, desc="registry sweep", disable=not progress)]


def summary(rows: list[Row]) -> dict[str, int]:
    counts = {"exact": 0, "refused": 0, "wrong": 0, "not built": 0}
    for row in rows:
        counts[row.status] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", default=None, help="also write the rows and counts to this file")
    parser.add_argument("types", nargs="*", help="model types (default: all causal-LM types)")
    args = parser.parse_args()
    rows = []
    for model_type in tqdm(args.types or causal_lm_types(), desc="registry sweep"):
        row = classify(model_type)
        rows.append(row)
        print(
            f"{row.model_type:32} {row.status:9} {row.family:12} {row.matched:9} {row.detail[:150]}",
            flush=True,
        )
    print(summary(rows))
    if args.json:
        from interp.io import atomic_write_text

        atomic_write_text(
            args.json, json.dumps({"counts": summary(rows), "rows": [asdict(r) for r in rows]}, indent=1)
        )


if __name__ == "__main__":
    main()
