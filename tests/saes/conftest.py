"""Fixtures: a tiny random GPT-2 wrapped as a HookedModel, a token dataset, and planted-feature data."""

from __future__ import annotations

import datasets
import pytest

import interp

from .helpers import PlantedFeatures, tiny_gpt2, token_dataset


@pytest.fixture(scope="session")
def model() -> interp.HookedModel:
    return interp.HookedModel(tiny_gpt2(), tokenizer=None)


@pytest.fixture(scope="session")
def tokens_ds() -> datasets.Dataset:
    return token_dataset()


@pytest.fixture(scope="session")
def planted() -> PlantedFeatures:
    return PlantedFeatures()
