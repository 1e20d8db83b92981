"""Task accuracy and metrics of any causal LM that uses the task tokenizer."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from interp.errors import InterpError
from interp.tasks import Task, TaskBatch, get, same_vocabulary
from interp.zoo.recipes import EVAL_SEED


def batch_logits(model: nn.Module, ids: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Logits [batch, pos, vocab] of `model` on `ids` [batch, pos], in chunks, without gradients.

    `model` may be a Hugging Face causal LM (output has `.logits`) or anything returning logits.
    """
    device = next(model.parameters()).device
    outs = []
    with torch.no_grad():
        for start in range(0, ids.shape[0], chunk):
            out = model(ids[start : start + chunk].to(device))
            outs.append((out.logits if hasattr(out, "logits") else out).float().cpu())
    return torch.cat(outs)


def evaluate(
    hf_model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: str | Task,
    n: int = 500,
    seed: int = EVAL_SEED,
) -> dict[str, float]:
    """Accuracy, mean logit difference and mean answer probability on `n` fresh samples.

    Example:
        >>> model, tok = interp.zoo.load_hf("ioi-tiny")
        >>> interp.zoo.evaluate(model, tok, "ioi", n=200, seed=1)
        {'accuracy': 1.0, 'logit_diff': 9.1, 'prob': 0.99}
    """
    task_obj = get(task) if isinstance(task, str) else task
    if not same_vocabulary(tokenizer):
        raise InterpError(
            "this model's tokenizer is not the interp task tokenizer, so task prompts cannot be fed to it; "
            "task evaluation needs a model trained on interp.tasks.tokenizer() (e.g. a zoo task model)"
        )
    batch: TaskBatch = task_obj.generate(n, seed=seed)
    return batch.metrics(batch_logits(hf_model, batch.clean))
