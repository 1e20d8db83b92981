"""The API reference pages build from the docstrings without a warning (`mkdocs build --strict`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_builds_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    pages = {
        name: (site / "api" / name / "index.html").read_text(encoding="utf-8")
        for name in ("interp", "saes", "circuits")
    }
    # the pages hold the rendered docstrings of the public names, examples included
    for page, names in {
        "interp": ("HookedModel", "run_batched", "to_tokens", "TaskBatch", "logit_lens", "Patch"),
        "saes": ("SAEConfig", "TrainConfig", "ActivationStore", "Trainer", "saes.io.load"),
        "circuits": ("activation_patching", "path_patching", "same_layout", "LabelledArray", "Circuit"),
    }.items():
        for name in names:
            assert name in pages[page], f"{name} missing from the {page} page"
    assert "Second moment" in pages["circuits"]
    assert 'class="doctest' in pages["interp"] or "&gt;&gt;&gt;" in pages["interp"]
