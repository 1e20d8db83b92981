"""Shared by the command-line tests: run `interp ...` in-process, and save a model as a folder."""

from __future__ import annotations

from pathlib import Path

import torch

import interp
from interp.cli import main
from interp.tasks import save_tokenizer


def run(argv: list[str]) -> int:
    """`interp *argv` in this process; its exit code."""
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def model_folder(hf_model: torch.nn.Module, folder: Path) -> Path:
    """`hf_model` saved with the task tokenizer as a folder `interp.load` reads (checked)."""
    hf_model.save_pretrained(folder)
    save_tokenizer(folder)
    interp.load(str(folder))
    return folder
