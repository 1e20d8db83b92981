"""Where zoo models live and how they are read and written.

A model folder holds `config.json`, `model.safetensors`, the tokenizer files and `card.json`.
Shipped models are under `interp/zoo/models/<name>/`; `load_hf` also reads any folder in that layout.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from interp.errors import InterpError, closest
from interp.io import atomic_dir, atomic_write_json

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).with_name("models")
CARD_FILE = "card.json"
WEIGHTS_FILE = "model.safetensors"


def names() -> list[str]:
    """Names of the shipped zoo models, sorted.

    Example:
        >>> names()
        ['facts-tiny', 'greater-than-tiny', 'hier-eq-tiny', 'induction-tiny', 'ioi-tiny', 'shakespeare-tiny']
    """
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / CARD_FILE).is_file())


def _unknown(name: str) -> InterpError:
    near = closest(name, names())
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return InterpError(f"unknown zoo model {name!r}{hint}; zoo models: {', '.join(names()) or 'none'}")


def path(name: str) -> Path:
    """The folder of zoo model `name`.

    Example:
        >>> path("ioi-tiny").name
        'ioi-tiny'
    """
    if name not in names():
        raise _unknown(name)
    return MODELS_DIR / name


def _resolve(name_or_dir: str | os.PathLike[str]) -> Path:
    """A zoo name, or a folder in the zoo layout (e.g. written by `interp zoo train --out`)."""
    if isinstance(name_or_dir, str) and name_or_dir in names():
        return MODELS_DIR / name_or_dir
    folder = Path(name_or_dir)
    if (folder / "config.json").is_file() and (folder / WEIGHTS_FILE).is_file():
        return folder
    raise _unknown(str(name_or_dir))


def card(name: str | os.PathLike[str]) -> dict[str, Any]:
    """The model card of zoo model `name` (or of a zoo-layout folder).

    Example:
        >>> card("ioi-tiny")["accuracy"]
        {'ioi': 1.0}
    """
    folder = _resolve(name)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise InterpError(f"{folder} has no {CARD_FILE}")
    return json.loads(card_path.read_text())


def load_hf(name: str | os.PathLike[str]) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """The Hugging Face model (float32, eval mode, weights via safetensors) and its tokenizer.

    Example:
        >>> model, tok = load_hf("ioi-tiny")
        >>> model(**tok("When Mary and John went to the store, John gave a drink to", return_tensors="pt")).logits.shape
        torch.Size([1, 15, 586])
    """
    folder = _resolve(name)
    # the folder's own architecture (GPT-2 or Llama-style zoo models): a fixed class would load a
    # Llama folder into freshly initialised GPT-2 weights without an error
    model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, dtype=torch.float32)
    model.eval()
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    return model, tok


def save(
    out_dir: str | os.PathLike[str],
    model: torch.nn.Module,
    tok: PreTrainedTokenizerFast,
    model_card: dict,
    files: dict[str, Any] | None = None,
) -> Path:
    """Write a model folder atomically: into a temporary sibling folder, then rename into place
    (an existing folder is replaced only once the new one is complete). `model` is a Hugging Face
    `PreTrainedModel`; `files` (name -> JSON value) are written beside it. The one writer of zoo
    folders (`interp.zoo.train` calls it).
    """
    with atomic_dir(out_dir, force=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        _portable_tokenizer_config(tmp)
        for name, value in (files or {}).items():
            atomic_write_json(tmp / name, value)
        atomic_write_json(tmp / CARD_FILE, model_card)
    out = Path(out_dir).resolve()
    log.info("wrote %s", out)
    return out


def _portable_tokenizer_config(folder: Path) -> None:
    """Name the tokenizer class `PreTrainedTokenizerFast`, which transformers 4 and 5 both load."""
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    atomic_write_json(cfg_path, cfg)
