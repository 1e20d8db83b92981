"""Random-init tiny configs of every supported family (weights perturbed so norms and biases matter)."""

from __future__ import annotations

import torch
import transformers as T

VOCAB = 97
_DECODER = dict(
    num_hidden_layers=2,
    hidden_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=96,
    vocab_size=VOCAB,
)


def _perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random norms and biases too, so a hook read in the wrong place shows up."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model.eval()


def _build(name: str, attn: str) -> torch.nn.Module:
    if name == "gpt2":
        cfg = T.GPT2Config(
            n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB, n_positions=64, bos_token_id=0, eos_token_id=0
        )
        return T.GPT2LMHeadModel(cfg)
    if name.startswith("neox"):
        cfg = T.GPTNeoXConfig(
            num_hidden_layers=2,
            hidden_size=64,
            num_attention_heads=4,
            intermediate_size=96,
            vocab_size=VOCAB,
            use_parallel_residual=name == "neox-parallel",
            max_position_embeddings=64,
        )
        return T.GPTNeoXForCausalLM(cfg)
    if name == "bert":
        cfg = T.BertConfig(
            num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=96, vocab_size=VOCAB
        )
        return T.BertModel(cfg, add_pooling_layer=False)
    config_cls, model_cls = {
        "llama": (T.LlamaConfig, T.LlamaForCausalLM),
        "mistral": (T.MistralConfig, T.MistralForCausalLM),
        "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM),
        "gemma": (T.GemmaConfig, T.GemmaForCausalLM),
        "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM),
        "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM),  # not in any table by name: found by structure
    }[name]
    extra = {"head_dim": 16} if name in ("gemma", "gemma2", "qwen3") else {}
    return model_cls(config_cls(**_DECODER, **extra))


FAMILIES = [
    "gpt2",
    "neox-parallel",
    "neox-sequential",
    "llama",
    "mistral",
    "qwen2",
    "gemma",
    "gemma2",
    "qwen3",
    "bert",
]


def make(name: str, attn: str = "eager", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = _build(name, attn)
    model.config._attn_implementation = attn
    return _perturb(model, seed)
