"""interp.names: hook points and circuit components parse, print back, and know their axes.

The axes table is checked against the tensors real hooked models cache, for every hook name of a
few families (GPT-2; Llama with grouped-query attention; NeoX with a parallel residual; Mixtral's
router; GPT-BigCode's multi-query attention; BERT)."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.adapters.spec import Direct
from interp.errors import InterpError
from interp.interventions import Ablate
from interp.names import AXES, BLOCK_KINDS, Component, HookPoint
from tests.tiny_models import VOCAB, make

BATCH, POS = 3, 7  # sizes no other axis of the tiny models has
FAMILIES = ["gpt2", "llama", "neox-parallel", "mixtral", "gpt_bigcode", "bert"]


@pytest.fixture(scope="module", params=FAMILIES)
def cached(request):
    model = interp.HookedModel(make(request.param))
    tokens = torch.randint(1, VOCAB, (BATCH, POS), generator=torch.Generator().manual_seed(0))
    _, cache = model.run_with_cache(tokens)
    return model, cache


def _sizes(model: interp.HookedModel) -> dict[str, int]:
    c = model.cfg
    return {
        "batch": BATCH,
        "pos": POS,
        "q_pos": POS,
        "k_pos": POS,
        "head": c.n_heads,
        "kv_head": c.n_kv_heads,
        "d_head": c.d_head,
        "d_model": c.d_model,
        "d_mlp": c.d_mlp,
        "expert": getattr(model.hf_model.config, "num_local_experts", -1),
    }


def test_every_hook_name_parses_and_prints_back(cached):
    model, _ = cached
    assert model.hook_names()
    for name in model.hook_names():
        point = HookPoint.parse(name)
        assert str(point) == point.name == name and HookPoint.parse(point) is point
        assert HookPoint(name) == point and hash(HookPoint(name)) == hash(point)
        if point.layer is None:
            assert not name.startswith("blocks.") and point.kind == name
        else:
            assert 0 <= point.layer < model.cfg.n_layers and HookPoint.block(point.layer, point.kind) == point


def test_axes_match_the_cached_tensors(cached):
    model, cache = cached
    sizes = _sizes(model)
    for name in model.hook_names():
        point, act = HookPoint(name), cache[name]
        assert point.axes is not None, f"{name}: kind missing from interp.names.AXES"
        expected = tuple(sizes[a] for a in point.axes)
        if name == "hook_pos_embed" and act.shape[0] == 1:  # the same for every example: broadcast
            expected = (1, *expected[1:])
        assert tuple(act.shape) == expected, (name, point.axes, act.shape)
        for dim in point.pos_dims:
            assert act.shape[dim] == POS, name
        if point.head_dim is None:
            assert point.heads is None
        else:
            assert act.shape[point.head_dim] == point.head_count(model.cfg), name
        assert point.per_token == (point.kind not in ("attn.hook_pattern", "attn.hook_attn_scores"))


def test_head_axes_agree_with_the_adapter_table(cached):
    model, _ = cached
    for kind, entry in model.adapter.block_points.items():
        assert kind in BLOCK_KINDS, kind
        if isinstance(entry, Direct) and entry.heads is not None:
            assert HookPoint.block(0, kind).heads == entry.heads, kind


def test_selections_hit_the_head_and_position_axes(cached):
    """An intervention restricted to one head and one position edits exactly that slice, and a
    cache restricted to positions keeps them on each point's position axis (query for patterns)."""
    model, cache = cached
    for name in model.hook_names():
        point, act = HookPoint(name), cache[name]
        head = None if point.head_dim is None else point.head_count(model.cfg) - 1
        edited = Ablate(name, heads=None if head is None else (head,), positions=(2,)).apply(act)
        changed = (edited != act).nonzero()
        assert len(changed) and bool((changed[:, point.pos_dim] == 2).all()), name
        if head is not None:
            assert bool((changed[:, point.head_dim] == head).all()), name
    tokens = torch.randint(1, VOCAB, (BATCH, POS), generator=torch.Generator().manual_seed(0))
    _, kept = model.run_with_cache(tokens, positions=[0, 3])
    for name in model.hook_names():
        point = HookPoint(name)
        assert kept[name].shape[point.pos_dim] == 2 and kept[name].ndim == cache[name].ndim, name


@pytest.mark.parametrize(
    "name",
    ["", "blocks", "blocks.1.", "blocks.x.attn.hook_z", "blocks.-1.hook_resid_pre", "blocks.01.hook_z",
     "blocks.1.resid_post", "hook_embed ", "blocks.1.blocks.2.hook_z", "attn..hook_z", "L1.H2"],
)  # fmt: skip
def test_malformed_hook_names_are_refused_clearly(name):
    with pytest.raises(InterpError, match=r"is not a hook name: expected blocks\.<layer>\.<kind>"):
        HookPoint.parse(name)
    assert HookPoint.try_parse(name) is None


def test_unknown_kinds_and_global_points():
    extra = HookPoint("blocks.2.mlp.hook_extra")  # a family's own point: [batch, pos, ...]
    assert (extra.layer, extra.kind, extra.axes, extra.pos_dims, extra.head_dim) == (
        2,
        "mlp.hook_extra",
        None,
        (1,),
        None,
    )
    embed, final = HookPoint("hook_embed"), HookPoint("ln_final.hook_normalized")
    assert embed.is_embedding and not final.is_embedding and embed.layer is final.layer is None
    assert embed.order < HookPoint("blocks.0.hook_resid_pre").order < final.order
    assert HookPoint("blocks.0.hook_resid_post").order < HookPoint("blocks.1.hook_resid_pre").order
    assert set(AXES) >= {"hook_embed", "ln_final.hook_normalized", "attn.hook_z", "hook_resid_post"}
    with pytest.raises(InterpError, match="no head axis"):
        HookPoint("blocks.0.hook_resid_post").head_count(None)
    assert HookPoint("blocks.1.hook_attn_out").feature_site == "attn" and embed.feature_site is None


@pytest.mark.parametrize(
    ("name", "kind", "hook", "head"),
    [
        ("embed", "embed", None, None),
        ("logits", "logits", None, None),
        ("L1.H3", "head", "blocks.1.attn.hook_z", 3),
        ("MLP0", "mlp", "blocks.0.hook_mlp_out", None),
        ("L2.resid.F17", "feature", "blocks.2.hook_resid_post", None),
        ("L0.attn.err", "error", "blocks.0.hook_attn_out", None),
    ],
)
def test_component_names_round_trip(name, kind, hook, head):
    node = Component.parse(name)
    assert (node.kind, node.head, str(node), repr(node)) == (kind, head, name, f"Component({name!r})")
    assert Component.parse(node) is node and Component.parse(f" {name} ") == node
    assert (None if node.hook is None else node.hook.name) == hook
    if node.hook is not None and node.kind in ("feature", "error"):
        assert node.hook.feature_site == node.site


def test_component_depth_orders_the_residual_stream():
    names = ["logits", "MLP1", "L1.resid.F0", "L1.H0", "L0.mlp.err", "MLP0", "L0.attn.F2", "L0.H1", "embed"]
    ordered = [str(n) for n in sorted(map(Component.parse, names), key=Component.sort_key)]
    assert ordered == [
        "embed",
        "L0.H1",
        "L0.attn.F2",
        "MLP0",
        "L0.mlp.err",
        "L1.H0",
        "MLP1",
        "L1.resid.F0",
        "logits",
    ]


@pytest.mark.parametrize(
    "name", ["", "L1", "H3", "L1.H", "MLP", "mlp1", "L1.resid.F", "L1.res.F2", "L1.H3.q"]
)
def test_malformed_component_names_are_refused_clearly(name):
    with pytest.raises(
        InterpError, match="cannot parse node name .*expected embed, logits, L<layer>.H<head>"
    ):
        Component.parse(name)
