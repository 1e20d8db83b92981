"""ActivationCache views, run_with_cache options, padding and text inputs."""

from __future__ import annotations

import pytest
import torch

import interp
from tests.tiny_models import VOCAB, make


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.HookedModel(make("llama"))


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(1))


def test_names_as_glob_list_and_callable(model, tokens):
    _, by_glob = model.run_with_cache(tokens, names="blocks.*.hook_resid_post")
    _, by_list = model.run_with_cache(tokens, names=["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"])
    _, by_fn = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_resid_post"))
    assert (
        list(by_glob)
        == list(by_list)
        == list(by_fn)
        == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    )
    assert all(torch.equal(by_glob[k], by_fn[k]) for k in by_glob)


def test_stack_accumulate_decompose(model, tokens):
    _, cache = model.run_with_cache(tokens)
    assert cache.stack("hook_resid_post").shape == (2, 2, 9, 64)
    acc = cache.accumulated_resid()
    assert acc.shape == (3, 2, 9, 64)
    assert torch.equal(acc[-1], cache["blocks.1.hook_resid_post"])
    labels, parts = cache.decompose_resid()
    assert labels == ["embed", "attn0", "mlp0", "attn1", "mlp1"]
    torch.testing.assert_close(parts.sum(0), cache["blocks.1.hook_resid_post"], atol=1e-5, rtol=1e-5)
    assert set(cache.to_dict()) == set(cache)


def test_logit_lens_last_layer_is_the_models_logits(model, tokens):
    logits, cache = model.run_with_cache(tokens, names=lambda n: "resid" in n)
    lens = cache.logit_lens()
    assert lens.shape == (3, 2, VOCAB)
    torch.testing.assert_close(lens[-1], logits[:, -1], atol=1e-5, rtol=1e-5)
    assert cache.logit_lens(pos=None).shape == (3, 2, 9, VOCAB)


def test_positions_and_device_options(model, tokens):
    _, full = model.run_with_cache(tokens, names=["blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern"])
    _, part = model.run_with_cache(
        tokens,
        names=["blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern"],
        positions=slice(-3, None),
        device="cpu",
    )
    assert torch.equal(part["blocks.0.hook_resid_pre"], full["blocks.0.hook_resid_pre"][:, -3:])
    assert torch.equal(part["blocks.0.attn.hook_pattern"], full["blocks.0.attn.hook_pattern"][:, :, -3:])
    assert part["blocks.0.hook_resid_pre"].device.type == "cpu"


def test_missing_name_in_cache(model, tokens):
    _, cache = model.run_with_cache(tokens, names="blocks.0.hook_resid_pre")
    with pytest.raises(interp.HookNameError, match="did you mean blocks.0.hook_resid_pre"):
        cache["blocks.0.hook_resid_pr"]


def test_cache_holds_little_beyond_its_tensors(model):
    """Cached tensors do not pin large hidden buffers (views into bigger storages)."""
    big = torch.randint(0, VOCAB, (8, 32))
    _, cache = model.run_with_cache(big)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in cache.values()}
    assert sum(storages.values()) <= 1.05 * cache.nbytes()


def test_padding_with_attention_mask_matches_unpadded():
    model = interp.HookedModel(make("gpt2"))
    short = torch.randint(1, VOCAB, (1, 5))
    padded = torch.cat([short, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    alone = model(short)
    logits, cache = model.run_with_cache(padded, attention_mask=mask, names="blocks.*.attn.hook_pattern")
    torch.testing.assert_close(logits[:, :5], alone, atol=1e-5, rtol=1e-5)
    assert cache["blocks.0.attn.hook_pattern"][0, :, :, 5:].abs().max() == 0  # no attention to padding


def test_text_inputs_use_the_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<eos>", "the", "cat", "sat", "on", "mat", "a"]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<eos>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="<eos>")
    model = interp.HookedModel(make("gpt2"), tokenizer)
    ids, mask = model.to_tokens(["the cat sat", "a cat sat on the mat"])
    assert ids.shape == (2, 6) and mask is not None and mask[0].sum() == 3
    one = model("the cat sat")
    both = model(["the cat sat", "a cat sat on the mat"])
    torch.testing.assert_close(both[0, :3], one[0], atol=1e-5, rtol=1e-5)
