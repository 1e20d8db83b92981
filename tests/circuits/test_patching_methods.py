"""Path patching, attention knockout, attention contributions, mediation and context-length probing,
each checked against a definition computed another way."""

from __future__ import annotations

import pytest
import torch

import interp
from circuits import patching
from circuits.patching.contributions import head_source_vectors, output_projection
from interp.errors import InterpError
from tests.tiny_models import VOCAB, make

METRIC = patching.logit_diff(answer=5, wrong=7, position=-1)


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.HookedModel(make("gpt2"))


@pytest.fixture(scope="module")
def linear_toy() -> interp.HookedModel:
    """GPT-2 whose output is additive in the last layer's attention output: no final norm, last MLP zero.

    The logit difference is then a linear function of `blocks.1.hook_attn_out` (and of head outputs and
    values in block 1) plus a term that does not depend on it.
    """
    hf = make("gpt2")
    hf.transformer.ln_f = torch.nn.Identity()
    with torch.no_grad():
        for param in hf.transformer.h[-1].mlp.parameters():
            param.zero_()
    return interp.HookedModel(hf)


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    corrupted = clean.clone()
    corrupted[:, 3] = (corrupted[:, 3] + 5) % VOCAB
    return clean, corrupted


# -- path patching -------------------------------------------------------------------------------
def test_path_patching_to_logits(model, pair):
    res = patching.path_patching(model, *pair, METRIC)
    assert res.dims == ("layer", "head") and res.values.shape == (2, 4)
    # nothing sits between last-layer heads and the logits: path patching = noising their outputs
    direct = patching.activation_patching(model, *pair, METRIC, "z", "head", mode="noise")
    torch.testing.assert_close(res.values[1], direct.values[1], atol=1e-5, rtol=0)
    # earlier heads differ: their effect through later heads is removed
    assert not torch.allclose(res.values[0], direct.values[0], atol=1e-3)
    assert res.meta["forward_passes"] == 5 and model.hooks_installed() == 0


def test_path_patching_to_queries(model, pair):
    to_q = patching.path_patching(
        model, *pair, METRIC, [patching.Receiver("blocks.1.attn.hook_q", positions=(-1,))]
    )
    assert to_q.values.shape == (1, 4)  # only layer-0 heads can send to block 1's queries
    # the same by hand for one sender: record block-1 queries with head 0.2 corrupted, patch them in
    clean, corrupted = pair
    _, corr_cache = model.run_with_cache(corrupted, names="blocks.0.attn.hook_z")
    recorded = {}

    def record(q, name):
        recorded["q"] = q.clone()

    with torch.no_grad():
        with model.hooks({"blocks.1.attn.hook_q": record}):
            model.run_with_interventions(
                clean,
                [interp.Patch("blocks.0.attn.hook_z", value=corr_cache["blocks.0.attn.hook_z"], heads=(2,))],
            )
        patched = METRIC(
            model.run_with_interventions(
                clean, [interp.Patch("blocks.1.attn.hook_q", value=recorded["q"], positions=(-1,))]
            )
        )
        m_clean, m_corr = float(METRIC(model(clean))), float(METRIC(model(corrupted)))
    assert to_q.values[0, 2].item() == pytest.approx((float(patched) - m_corr) / (m_clean - m_corr), abs=1e-4)
    with pytest.raises(InterpError, match="cannot send"):
        patching.path_patching(model, *pair, METRIC, ["blocks.1.attn.hook_q"], senders=[(1, 0)])


# -- attention knockout --------------------------------------------------------------------------
def test_knockout_equals_minus_infinity_scores(model, pair):
    clean, _ = pair
    blocked = patching.blocked_mask(queries=range(8), keys=[2, 3], n_pos=8)
    knocked = model.run_with_interventions(clean, patching.knockout_interventions([0, 1], blocked))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[:, 2:4] = 0  # the model's own additive -inf mask on those keys, for every query
    with torch.no_grad():
        torch.testing.assert_close(knocked, model(clean, attention_mask=mask), atol=1e-5, rtol=0)


def test_knockout_sweep_and_rows(model, pair):
    clean, _ = pair
    res = patching.attention_knockout(model, clean, METRIC, queries=[-1], keys=[1, 2])
    assert res.dims == ("layer",) and res.values.shape == (2,)
    heads = patching.attention_knockout(
        model, clean, METRIC, queries=[-1], keys=[1, 2], per_head=True, relative=False
    )
    assert heads.values.shape == (2, 4)
    with torch.no_grad():
        one = METRIC(
            model.run_with_interventions(
                clean, patching.knockout_interventions([1], patching.blocked_mask([-1], [1, 2], 8), heads=[3])
            )
        )
    assert heads.values[1, 3].item() == pytest.approx(float(one), abs=1e-5)
    knock = patching.Knockout("blocks.0.attn.hook_pattern", blocked=patching.blocked_mask([2], [0, 1, 2], 3))
    pattern = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5]]).expand(1, 2, 3, 3)
    out = knock.apply(pattern)
    assert out[0, 0, 2].tolist() == [0.0, 0.0, 0.0] and out[0, 0, 1].tolist() == [0.5, 0.5, 0.0]
    assert interp.Intervention.from_json(knock.to_json()) == knock
    with pytest.raises(InterpError, match="out of range"):
        patching.attention_knockout(model, clean, METRIC, queries=[8], keys=[0])


# -- attention contributions ---------------------------------------------------------------------
def test_contributions_sum_to_attention_output(model, pair):
    clean, _ = pair
    _, cache = model.run_with_cache(clean)
    query = torch.tensor([7, 5])
    vectors = head_source_vectors(
        model, cache["blocks.1.attn.hook_v"], cache["blocks.1.attn.hook_pattern"], 1, query
    )
    bias = output_projection(model, 1)(torch.zeros(model.cfg.d_model))
    attn_out = cache["blocks.1.hook_attn_out"][torch.arange(2), query]
    torch.testing.assert_close(vectors.sum((1, 2)) + bias, attn_out, atol=1e-5, rtol=0)
    res = patching.attention_contributions(model, clean, query)
    assert res.dims == ("layer", "head", "source") and res.values.shape == (2, 4, 8)
    torch.testing.assert_close(res.values[1], vectors.norm(dim=-1).mean(0))


# -- mediation -----------------------------------------------------------------------------------
def test_mediation_effects_add_up_for_a_linear_toy(linear_toy, pair):
    res = patching.mediation(linear_toy, *pair, METRIC, "attn_out", per="layer", layers=[1])
    total, direct, indirect = res.values[:, 0]
    assert float(total) == pytest.approx(float(direct + indirect), abs=1e-5)
    assert abs(float(indirect)) > 1e-4 and abs(float(direct)) > 1e-4
    heads = patching.mediation(linear_toy, *pair, METRIC, "z", per="head", layers=[1])
    torch.testing.assert_close(heads.values[0], heads.values[1] + heads.values[2], atol=1e-5, rtol=0)
    assert heads.labels["effect"] == ("total", "direct", "indirect")


def test_mediation_definitions(model, pair):
    clean, corrupted = pair
    res = patching.mediation(model, clean, corrupted, METRIC, "mlp_out", per="layer")
    with torch.no_grad():
        y = float(METRIC(model(clean)))
        _, c_cache = model.run_with_cache(clean, names="blocks.0.hook_mlp_out")
        _, x_cache = model.run_with_cache(corrupted, names="blocks.0.hook_mlp_out")
        nde = (
            float(
                METRIC(
                    model.run_with_interventions(
                        corrupted, [interp.Patch("blocks.0.hook_mlp_out", value=c_cache)]
                    )
                )
            )
            - y
        )
        nie = (
            float(
                METRIC(
                    model.run_with_interventions(
                        clean, [interp.Patch("blocks.0.hook_mlp_out", value=x_cache)]
                    )
                )
            )
            - y
        )
        te = float(METRIC(model(corrupted))) - y
    assert res.sel(effect="direct").values[0].item() == pytest.approx(nde, abs=1e-5)
    assert res.sel(effect="indirect").values[0].item() == pytest.approx(nie, abs=1e-5)
    assert res.sel(effect="total").values[0].item() == pytest.approx(te, abs=1e-5)


# -- context-length probing ----------------------------------------------------------------------
def test_context_probing_matches_truncated_runs(model):
    ids = torch.randint(0, VOCAB, (1, 7), generator=torch.Generator().manual_seed(2))
    probe = patching.context_length_probing(model, ids)
    with torch.no_grad():
        for t, c in [(5, 2), (6, 0), (3, 2), (6, 5)]:
            short = torch.cat([ids[:, :1], ids[:, t - c : t]], dim=1)
            expected = model(short)[0, -1].log_softmax(-1)[ids[0, t]]
            assert probe.logprob.values[t - 1, c].item() == pytest.approx(expected.item(), abs=1e-5)
    assert torch.isnan(probe.logprob.values[2, 3])  # target 3 has at most 2 tokens of context
    assert probe.kl.values[5, 5].item() == pytest.approx(0.0, abs=1e-6)  # full context vs itself
    imp = probe.importance.values
    assert imp[4, 2].item() == pytest.approx(
        (probe.logprob.values[4, 3] - probe.logprob.values[4, 2]).item(), abs=1e-6
    )
    assert probe.importance.dims == ("target", "source") and probe.logprob.meta["forward_passes"] == 1
