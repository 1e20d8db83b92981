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
    pad_token_id=0,
    bos_token_id=0,
    eos_token_id=0,
)
_GPT = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB, bos_token_id=0, eos_token_id=0)


def _other(name: str) -> torch.nn.Module | None:
    """The families added after the first four, by name; None if `name` is not one of them."""
    d = dict(_DECODER)
    builders = {
        "opt": lambda: T.OPTForCausalLM(
            T.OPTConfig(
                num_hidden_layers=2,
                hidden_size=64,
                num_attention_heads=4,
                ffn_dim=96,
                vocab_size=VOCAB,
                word_embed_proj_dim=64,
                max_position_embeddings=64,
                pad_token_id=0,
                bos_token_id=0,
                eos_token_id=0,
            )
        ),
        "gptj": lambda: T.GPTJForCausalLM(T.GPTJConfig(**_GPT, rotary_dim=8, n_positions=64)),
        "gpt_neo": lambda: T.GPTNeoForCausalLM(
            T.GPTNeoConfig(
                num_layers=2,
                hidden_size=64,
                num_heads=4,
                vocab_size=VOCAB,
                max_position_embeddings=64,
                attention_types=[[["global", "local"], 1]],
                window_size=4,
                bos_token_id=0,
                eos_token_id=0,
            )
        ),
        "falcon-new": lambda: T.FalconForCausalLM(
            T.FalconConfig(**_falcon(), new_decoder_architecture=True, num_kv_heads=2, parallel_attn=True)
        ),
        "falcon-mq": lambda: T.FalconForCausalLM(
            T.FalconConfig(**_falcon(), new_decoder_architecture=False, multi_query=True, parallel_attn=True)
        ),
        "falcon-seq-alibi": lambda: T.FalconForCausalLM(
            T.FalconConfig(
                **_falcon(),
                new_decoder_architecture=False,
                multi_query=False,
                parallel_attn=False,
                alibi=True,
                bias=True,
            )
        ),
        "phi": lambda: T.PhiForCausalLM(
            T.PhiConfig(**{**d, "num_key_value_heads": 4}, partial_rotary_factor=0.5)
        ),
        "phi3": lambda: T.Phi3ForCausalLM(T.Phi3Config(**d)),
        "bloom": lambda: T.BloomForCausalLM(
            T.BloomConfig(
                n_layer=2,
                hidden_size=64,
                n_head=4,
                vocab_size=VOCAB,
                bos_token_id=0,
                eos_token_id=0,
                pad_token_id=0,
            )
        ),
        "stablelm": lambda: T.StableLmForCausalLM(T.StableLmConfig(**d, qk_layernorm=True)),
        "stablelm-parallel": lambda: T.StableLmForCausalLM(T.StableLmConfig(**d, use_parallel_residual=True)),
        "starcoder2": lambda: T.Starcoder2ForCausalLM(T.Starcoder2Config(**d)),
        "cohere": lambda: T.CohereForCausalLM(T.CohereConfig(**d, logit_scale=0.5, use_qk_norm=False)),
        "olmo": lambda: T.OlmoForCausalLM(T.OlmoConfig(**d)),
        "olmo2": lambda: T.Olmo2ForCausalLM(T.Olmo2Config(**d)),
        "granite": lambda: T.GraniteForCausalLM(
            T.GraniteConfig(
                **d,
                embedding_multiplier=3.0,
                residual_multiplier=0.37,
                logits_scaling=2.5,
                attention_multiplier=0.2,
            )
        ),
        "gemma3": lambda: T.Gemma3ForCausalLM(T.Gemma3TextConfig(**d, head_dim=16, sliding_window=4)),
        "mixtral": lambda: T.MixtralForCausalLM(
            T.MixtralConfig(**d, num_local_experts=4, num_experts_per_tok=2)
        ),
        "gpt_bigcode": lambda: T.GPTBigCodeForCausalLM(
            T.GPTBigCodeConfig(**_GPT, n_positions=64, multi_query=True)
        ),
    }
    return builders[name]() if name in builders else None


def _falcon() -> dict:
    return dict(
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        vocab_size=VOCAB,
        bos_token_id=0,
        eos_token_id=0,
        max_position_embeddings=64,
    )


def _perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random norms and biases too, so a hook read in the wrong place shows up."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model.eval()


def _build(name: str, attn: str) -> torch.nn.Module:
    other = _other(name)
    if other is not None:
        return other
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
NEW_FAMILIES = [
    "opt",
    "gptj",
    "gpt_neo",
    "falcon-new",
    "falcon-mq",
    "falcon-seq-alibi",
    "phi",
    "phi3",
    "bloom",
    "stablelm",
    "stablelm-parallel",
    "starcoder2",
    "cohere",
    "olmo",
    "olmo2",
    "granite",
    "gemma3",
    "mixtral",
    "gpt_bigcode",
]
ALL_FAMILIES = FAMILIES + NEW_FAMILIES


def make(name: str, attn: str = "eager", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = _build(name, attn)
    model.config._attn_implementation = attn
    return _perturb(model, seed)
