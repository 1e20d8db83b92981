import json

import datasets
import pytest
import torch

import saes
from interp.errors import HookNameError, InterpError
from saes.store import ActivationStore

from .helpers import assert_same_weights

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.1.attn.hook_z"]


def test_several_hooks_in_one_pass_with_paired_rows(model, tokens_ds):
    store = ActivationStore(model, tokens_ds, HOOKS, context_len=16, batch_size=64, model_batch_size=4)
    batches = list(store)
    assert len(batches) == (40 * 50 // 16 * 16) // 64
    for batch in batches:
        assert set(batch) == set(HOOKS)
        assert all(v.shape == (64, 64) for v in batch.values())  # hook_z: 4 heads x 16 concatenated
        # resid_post of block 0 is resid_pre of block 1: rows stay paired through the shuffle
        assert torch.equal(batch["blocks.0.hook_resid_post"], batch["blocks.1.hook_resid_pre"])
    assert store.widths() == {h: 64 for h in HOOKS}


def test_batches_match_the_model_and_are_shuffled(model, tokens_ds):
    store = ActivationStore(model, tokens_ds, HOOKS[0], context_len=16, batch_size=32)
    rows = torch.cat([b[HOOKS[0]] for b in store])
    windows = store.token_windows(1000)
    _, cache = model.run_with_cache(windows, names=HOOKS[0])
    direct = cache[HOOKS[0]].reshape(-1, 64)
    assert rows.shape[0] <= direct.shape[0]
    assert not torch.equal(rows, direct[: rows.shape[0]])  # shuffled
    distances = torch.cdist(rows, direct)
    assert distances.min(1).values.max() < 1e-3  # every yielded row is an activation of the model
    # one full pass yields every activation except the last partial batch
    assert int((distances.min(0).values > 1e-3).sum()) <= direct.shape[0] - rows.shape[0] < 32
    assert all(
        torch.equal(a[HOOKS[0]], b[HOOKS[0]]) for a, b in zip(store, store, strict=True)
    )  # deterministic


def test_disk_cache_is_reused_without_running_the_model(model, tokens_ds, tmp_path, monkeypatch):
    kw = dict(context_len=16, batch_size=64, cache_dir=tmp_path / "cache", shard_size=300)
    first = ActivationStore(model, tokens_ds, HOOKS, **kw)
    assert not first.from_cache
    reference = list(first)
    assert len(list((tmp_path / "cache").glob("shard_*.safetensors"))) > 1

    def no_forward(*args, **kwargs):
        raise AssertionError("the model ran although the cache is complete")

    monkeypatch.setattr(model, "run_with_cache", no_forward)
    second = ActivationStore(model, tokens_ds, HOOKS, **kw)
    assert second.from_cache
    again = list(second)
    assert len(again) == len(reference)
    assert all(torch.equal(a[h], b[h]) for a, b in zip(reference, again, strict=True) for h in HOOKS)
    assert second.widths()["blocks.1.attn.hook_z"] == 64


def test_cache_built_for_other_inputs_is_refused(model, tokens_ds, tmp_path):
    list(ActivationStore(model, tokens_ds, HOOKS[0], context_len=16, batch_size=64, cache_dir=tmp_path))
    with pytest.raises(InterpError, match="different model, dataset, hooks"):
        ActivationStore(model, tokens_ds, HOOKS[0], context_len=8, batch_size=64, cache_dir=tmp_path)


def test_repeated_passes_and_token_budget(model, tokens_ds):
    store = ActivationStore(model, tokens_ds, HOOKS[0], context_len=16, batch_size=64, max_tokens=320)
    assert sum(b[HOOKS[0]].shape[0] for b in store) == 320
    assert len(list(store.batches(n_tokens=64 * 12))) == 12


def test_text_column_uses_the_tokenizer(model):
    class CharTokenizer:
        eos_token_id = 0

        def __call__(self, text):  # one text or a list of texts, as Hugging Face tokenizers take
            if isinstance(text, list):
                return {"input_ids": [self(t)["input_ids"] for t in text]}
            return {"input_ids": [1 + ord(c) % 90 for c in text]}

        def decode(self, ids):
            return "".join(chr(i) for i in ids)

    ds = datasets.Dataset.from_dict({"text": ["hello world, " * 10] * 4})
    old, model.tokenizer = model.tokenizer, CharTokenizer()
    try:
        store = ActivationStore(model, ds, HOOKS[0], context_len=16, batch_size=32)
        windows = store.token_windows(3)
        assert windows.shape == (3, 16) and windows[0, 0] == 1 + ord("h") % 90
        assert next(iter(store))[HOOKS[0]].shape == (32, 64)
    finally:
        model.tokenizer = old


def test_gradients_are_recorded_for_gsae(model, tokens_ds):
    store = ActivationStore(model, tokens_ds, HOOKS[0], context_len=16, batch_size=64, with_grads=True)
    batch = next(iter(store))
    assert batch[f"{HOOKS[0]}:grad"].shape == (64, 64) and batch[f"{HOOKS[0]}:grad"].abs().sum() > 0
    cfg = saes.SAEConfig("gsae", d_in=64, d_sae=128, k=4, hook_in=HOOKS[0])
    trainer = saes.Trainer(cfg, saes.TrainConfig(total_steps=3, progress=False))
    trainer.fit(store)
    assert trainer.step == 3


def test_bad_inputs_are_clear_errors(model, tokens_ds):
    with pytest.raises(InterpError, match="empty"):
        ActivationStore(model, tokens_ds.select([]), HOOKS[0])
    with pytest.raises(HookNameError, match="closest"):
        ActivationStore(model, tokens_ds, "blocks.0.hook_resid_postt")
    with pytest.raises(InterpError, match="columns"):
        ActivationStore(model, datasets.Dataset.from_dict({"x": [1]}), HOOKS[0])
    with pytest.raises(InterpError, match="no tokenizer"):
        ActivationStore(model, datasets.Dataset.from_dict({"text": ["a"]}), HOOKS[0])
    with pytest.raises(InterpError, match="fewer than one batch"):
        list(ActivationStore(model, tokens_ds.select(range(2)), HOOKS[0], context_len=16, batch_size=4096))


def _counting(model, monkeypatch):
    calls = []
    original = model.run_with_cache

    def counted(*args, **kwargs):
        calls.append(args[0].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "run_with_cache", counted)
    return calls


def test_partial_pass_is_cached_and_reused(model, tokens_ds, tmp_path, monkeypatch):
    kw = dict(context_len=16, batch_size=64, model_batch_size=4, shard_size=128)
    reference = list(ActivationStore(model, tokens_ds, HOOKS, **kw))
    first = ActivationStore(model, tokens_ds, HOOKS, cache_dir=tmp_path, **kw)
    stream = iter(first)
    for _ in range(3):
        next(stream)
    stream.close()  # interrupted: the shards written so far stay usable
    index = json.loads((tmp_path / "index.json").read_text())
    assert 0 < index["windows"] < 125 and not index["complete"]
    assert sum(s["windows"] for s in index["shards"]) == index["windows"]
    calls = _counting(model, monkeypatch)
    second = ActivationStore(model, tokens_ds, HOOKS, cache_dir=tmp_path, **kw)
    again = list(second)
    assert sum(calls) == 125 - index["windows"]  # only the windows not on disk ran through the model
    assert all(torch.equal(a[h], b[h]) for a, b in zip(reference, again, strict=True) for h in HOOKS)
    assert json.loads((tmp_path / "index.json").read_text())["complete"] and second.from_cache
    calls.clear()
    third = list(ActivationStore(model, tokens_ds, HOOKS, cache_dir=tmp_path, **kw))
    assert not calls and len(third) == len(reference)


def test_skipped_batches_are_not_computed(model, tokens_ds, monkeypatch):
    store = ActivationStore(model, tokens_ds, HOOKS[:2], context_len=16, batch_size=64, model_batch_size=4)
    budget = 64 * 50  # a pass has 31 batches: this crosses into the second pass
    reference = list(store.batches(n_tokens=budget))
    assert len(reference) == 50
    calls = _counting(model, monkeypatch)
    for skip in (0, 5, 31, 40, 50):
        calls.clear()
        resumed = list(store.batches(n_tokens=budget).skip_batches(skip))
        assert len(resumed) == 50 - skip
        for a, b in zip(reference[skip:], resumed, strict=True):
            assert all(torch.equal(a[h], b[h]) for h in HOOKS[:2])
        if skip >= 31:  # a replay would run all 125 windows of pass 1 and all of pass 2 again
            assert sum(calls) <= 125
        if skip == 50:
            assert not calls


def test_forward_stops_after_the_last_needed_block(model, tokens_ds):
    from saes.store import last_block

    ran = []
    blocks = model.module(model.adapter.layers)
    handles = [b.register_forward_hook(lambda m, a, o, i=i: ran.append(i)) for i, b in enumerate(blocks)]
    head = model.hf_model.get_output_embeddings().register_forward_hook(lambda m, a, o: ran.append("head"))
    try:
        store = ActivationStore(model, tokens_ds, "blocks.0.hook_mlp_out", context_len=16, batch_size=64)
        batch = next(iter(store))
        assert set(ran) == {0}  # block 1 and the unembedding never ran
        _, cache = model.run_with_cache(store.token_windows(1000), names="blocks.0.hook_mlp_out")
        rows = cache["blocks.0.hook_mlp_out"].reshape(-1, 64)
        assert torch.cdist(batch["blocks.0.hook_mlp_out"], rows).min(1).values.max() < 1e-3
    finally:
        for h in (*handles, head):
            h.remove()
    assert last_block(model, ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z"]) == 1
    assert last_block(model, ["hook_embed"]) == 0
    assert last_block(model, ["ln_final.hook_normalized"]) is None


def test_resume_from_a_store_skips_consumed_batches_and_matches(model, tokens_ds, tmp_path, monkeypatch):
    from saes.checkpoint import checkpoint_dirs

    store = ActivationStore(model, tokens_ds, HOOKS[0], context_len=16, batch_size=64, model_batch_size=4)
    cfg = saes.SAEConfig("topk", d_in=64, d_sae=128, k=4, hook_in=HOOKS[0])
    kw = dict(lr=1e-3, total_steps=40, progress=False, dead_window_tokens=4096)
    reference = saes.Trainer(cfg, saes.TrainConfig(**kw)).fit(store.batches(n_tokens=64 * 41))

    class Crash(Exception):
        pass

    def crashing():
        for i, batch in enumerate(store.batches(n_tokens=64 * 41)):
            if i == 35:
                raise Crash
            yield batch

    tc = saes.TrainConfig(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=34)
    with pytest.raises(Crash):
        saes.Trainer(cfg, tc).fit(crashing())
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_000000034"]
    calls = _counting(model, monkeypatch)
    resumed = saes.Trainer(cfg, tc).fit(store.batches(n_tokens=64 * 41), resume=True)
    # 34 consumed batches (a whole pass and 3 more) were not recomputed
    assert sum(calls) <= 125
    assert_same_weights(reference, resumed)


def test_fit_many_trains_each_hook_like_its_own_run(model, tokens_ds, monkeypatch):
    hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"]
    store = ActivationStore(model, tokens_ds, hooks, context_len=16, batch_size=64, model_batch_size=4)
    tc = saes.TrainConfig(lr=1e-3, total_steps=12, progress=False)
    cfgs = {h: saes.SAEConfig("topk", d_in=64, d_sae=128, k=4, hook_in=h) for h in hooks}
    calls = _counting(model, monkeypatch)
    together = saes.fit_many({h: saes.Trainer(c, tc) for h, c in cfgs.items()}, store.batches(64 * 13))
    assert sum(calls) <= 125  # one forward per chunk for both SAEs
    for h, cfg in cfgs.items():
        alone = saes.Trainer(cfg, tc).fit(
            ActivationStore(model, tokens_ds, h, context_len=16, batch_size=64, model_batch_size=4).batches(
                64 * 13
            )
        )
        for (name, a), b in zip(alone.state_dict().items(), together[h].state_dict().values(), strict=True):
            assert torch.allclose(a, b, atol=1e-6), (h, name)
