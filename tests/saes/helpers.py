"""Test helpers: a tiny random GPT-2, token datasets, and planted sparse features."""

from __future__ import annotations

import datasets
import torch
from transformers import GPT2Config, GPT2LMHeadModel

VOCAB = 100


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """Every parameter and buffer of `a` and `b` bitwise equal (named in the failure)."""
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    """A 2-layer, d_model=64 GPT-2 with random weights (vocab 100, context 64)."""
    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(cfg).eval()


def token_dataset(rows: int = 40, length: int = 50, seed: int = 0) -> datasets.Dataset:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (rows, length), generator=g)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist()})


class PlantedFeatures:
    """Activations that are sparse non-negative combinations of `n` random unit directions in R^d."""

    def __init__(self, n: int = 48, d: int = 24, p: float = 0.04, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.features = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)  # [n, d]
        self.n, self.d, self.p = n, d, p

    def codes(self, batch: int, g: torch.Generator) -> torch.Tensor:
        on = (torch.rand(batch, self.n, generator=g) < self.p).float()
        return on * (torch.rand(batch, self.n, generator=g) * 1.5 + 0.5)  # [batch, n]

    def batches(self, steps: int, batch: int = 512, seed: int = 1):
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            yield self.codes(batch, g) @ self.features

    def recovery(self, W_dec: torch.Tensor) -> float:
        """Mean over planted features of the best cosine similarity with any decoder row."""
        rows = torch.nn.functional.normalize(W_dec.detach().float(), dim=-1)
        return float((self.features @ rows.T).max(-1).values.mean())
