"""The registry sweep: every causal-LM config class transformers ships, built tiny: never wrong."""

from __future__ import annotations

from interp.adapters.sweep import summary, sweep

NAMED = {  # model_type -> the table that must serve it exactly
    "gpt2": "gpt2",
    "gpt_neox": "gpt_neox",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "llama",
    "gemma": "llama",
    "gemma2": "llama",
    "gemma3_text": "gemma3",
    "opt": "opt",
    "gptj": "gptj",
    "gpt_neo": "gpt_neo",
    "falcon": "falcon",
    "phi": "phi",
    "phi3": "phi3",
    "bloom": "bloom",
    "stablelm": "stablelm",
    "starcoder2": "starcoder2",
    "cohere": "cohere",
    "olmo": "olmo",
    "olmo2": "olmo2",
    "granite": "granite",
    "mixtral": "mixtral",
    "gpt_bigcode": "gpt_bigcode",
    "bert": "bert",
}


def test_every_causal_lm_is_exact_or_refused_never_wrong():
    rows = sweep(progress=False)
    counts = summary(rows)
    wrong = [f"{r.model_type}: {r.detail}" for r in rows if r.status == "wrong"]
    assert not wrong, wrong
    by_type = {r.model_type: r for r in rows}
    for model_type, family in NAMED.items():
        row = by_type[model_type]
        assert (row.status, row.family) == ("exact", family), row
    assert counts["exact"] >= len(NAMED)
    for row in rows:
        if row.status == "refused":
            assert row.detail and "\n" not in row.detail  # one clear line
