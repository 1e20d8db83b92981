import types

import torch

from interp.demo import DemoInputs, cache_run
from saes.demo import FIGURE, stage


def test_demo_stage_trains_and_reports(model, tmp_path):
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(1, 100, (64, 12), generator=g)
    batch = types.SimpleNamespace(clean=clean, corrupted=clean.flip(0))
    run = cache_run(DemoInputs(model, "tiny", "none", batch, tmp_path, quick=True, seed=0))
    result = stage(run)
    assert (tmp_path / FIGURE).read_bytes()[:4] == b"\x89PNG"
    assert result.figures == (FIGURE,) and "TopK SAE" in result.text
    assert result.metrics["l0"] <= 8 and result.metrics["fvu"] < 1
    assert result.value.cfg.hook_in == "blocks.1.hook_resid_post"
