import json

import pytest

import saes
from interp.errors import InterpError


def test_sae_config_json_round_trip():
    cfg = saes.SAEConfig("matryoshka", d_in=16, d_sae=64, k=4, matryoshka_prefixes=(8, 32, 64), hook_in="h")
    again = saes.SAEConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and hash(again) == hash(cfg)


def test_train_config_json_round_trip():
    tc = saes.TrainConfig(lr=1e-3, adam_betas=(0.8, 0.99), total_tokens=10_000, batch_size=100)
    assert saes.TrainConfig.from_dict(json.loads(json.dumps(tc.to_dict()))) == tc
    assert tc.max_steps == 100


def test_configs_are_frozen():
    cfg = saes.SAEConfig("relu", d_in=4, d_sae=8)
    with pytest.raises(AttributeError):
        cfg.d_sae = 16


def test_derived_views_for_sae_and_transcoder():
    sae_cfg = saes.SAEConfig("relu", d_in=4, d_sae=8, hook_in="blocks.0.hook_resid_post")
    assert sae_cfg.out_hook == sae_cfg.hook_in and sae_cfg.out_dim == 4 and not sae_cfg.is_transcoder
    tc = saes.SAEConfig(
        "relu", d_in=4, d_sae=8, d_out=6, hook_in="blocks.0.mlp.hook_pre", hook_out="blocks.0.hook_mlp_out"
    )
    assert tc.is_transcoder and tc.out_dim == 6 and tc.out_hook == "blocks.0.hook_mlp_out"
    assert saes.SAEConfig("matryoshka", d_in=4, d_sae=64, k=2).prefixes == (8, 16, 32, 64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(arch="nope", d_in=4, d_sae=8), "unknown SAE architecture 'nope'"),
        (dict(arch="topk", d_in=4, d_sae=8), "needs k"),
        (dict(arch="topk", d_in=4, d_sae=8, k=9), "k=9"),
        (dict(arch="relu", d_in=0, d_sae=8), "d_in must be a positive int"),
        (dict(arch="matryoshka", d_in=4, d_sae=8, k=2, matryoshka_prefixes=(4, 2, 8)), "matryoshka_prefixes"),
        (dict(arch="relu", d_in=4, d_sae=8, normalize="layer"), "normalize"),
    ],
)
def test_sae_config_validation(kwargs, message):
    with pytest.raises(InterpError, match=message):
        saes.SAEConfig(**kwargs)


def test_unknown_field_lists_valid_ones():
    with pytest.raises(InterpError, match="unknown field"):
        saes.SAEConfig.from_dict({"arch": "relu", "d_in": 4, "d_sae": 8, "l1": 3})


@pytest.mark.parametrize(
    "kwargs", [dict(lr=0), dict(total_steps=0), dict(grad_clip=-1.0), dict(b_dec_init="median")]
)
def test_train_config_validation(kwargs):
    with pytest.raises(InterpError):
        saes.TrainConfig(**kwargs)


def test_knobs_live_in_the_architectures_fragment():
    cfg = saes.SAEConfig("jumprelu", d_in=4, d_sae=8, jumprelu_bandwidth=0.05)
    assert cfg.knobs.jumprelu_bandwidth == 0.05 and cfg.to_dict()["knobs"]["jumprelu_bandwidth"] == 0.05
    assert saes.SAEConfig("jumprelu", d_in=4, d_sae=8, knobs={"jumprelu_bandwidth": 0.05}) == cfg
    with pytest.raises(InterpError, match=r"'relu' has no knob gsae_beta .*gsae.*; its knobs: none"):
        saes.SAEConfig("relu", d_in=4, d_sae=8, gsae_beta=0.5)
    with pytest.raises(InterpError, match="its knobs: sparse_topk, matryoshka_prefixes"):
        saes.SAEConfig("matryoshka", d_in=4, d_sae=8, k=2, knobs={"bandwidth": 1.0})


def test_the_flat_layout_of_older_files_still_loads():
    flat = {
        "arch": "matryoshka", "d_in": 16, "d_sae": 64, "k": 4, "d_out": None, "hook_in": "h",
        "hook_out": None, "model_name": "", "normalize": "mean_norm", "apply_b_dec_to_input": True,
        "jumprelu_init_threshold": 0.1, "jumprelu_bandwidth": 0.1, "matryoshka_prefixes": [8, 32, 64],
        "zipf_exponent": 1.0, "threshold_momentum": 0.01, "gsae_beta": 1.0, "dtype": "float32",
        "n_layers": 1, "cross_layer": True, "sparse_topk": False,
    }  # fmt: skip
    cfg = saes.SAEConfig.from_dict(flat)
    assert cfg == saes.SAEConfig(
        "matryoshka", d_in=16, d_sae=64, k=4, hook_in="h", matryoshka_prefixes=(8, 32, 64), sparse_topk=False
    )
