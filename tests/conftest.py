"""Shared test set-up: offline, quiet, deterministic, and small models of every supported family."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def sigint(request):
    """SIGINT's handler set to `request.param` (parametrize with `indirect=True`) for the test: a test
    run started in the background by a non-interactive shell inherits SIGINT ignored. The process's
    own handler is restored after."""
    import signal

    before = signal.signal(signal.SIGINT, request.param)
    yield request.param
    signal.signal(signal.SIGINT, before)


# The slow set: training runs, notebooks and zoo reproductions (each several seconds or more on two
# cores). `python -m pytest` runs everything; `python -m pytest -m "not slow"` is the fast set.
# Entries are test files or test functions (every parametrisation of a function is included).
SLOW = (
    "tests/test_notebooks.py",
    "tests/saes/test_distributed.py",
    "tests/saes/test_trainer.py::test_recovers_planted_features",
    "tests/saes/test_trainer.py::test_gsae_trains_with_a_gradient_signal",
    "tests/saes/test_trainer.py::test_transcoder_recovers_a_sparse_map",
    "tests/saes/test_demo_stage.py::test_demo_stage_trains_and_reports",
    "tests/saes/test_cli.py::test_train_then_eval",
    "tests/interp/test_zoo.py::test_zoo_train_reproduces_shipped_model",
    "tests/interp/test_zoo.py::test_shakespeare_validation_loss_matches_card",
    "tests/circuits/test_editing.py::test_rome_on_the_facts_zoo_model",
    "tests/circuits/test_abstraction_zoo.py",
    "tests/circuits/test_abstraction_das.py::test_nonlinear_map_is_invertible_and_aligns",
    "tests/circuits/test_abstraction_cli.py::test_align_writes_result_and_figures",
    "tests/circuits/test_patching_prefix.py::test_bench_agrees_with_transformer_lens",
    "tests/circuits/test_patching_cli.py::test_patch_writes_result_and_figures",
    "tests/circuits/test_concepts_das_sae.py",
    "tests/interp/test_hook_overhead_bench.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        test = item.nodeid.split("[", 1)[0]
        if any(test == entry or test.startswith(entry + "::") for entry in SLOW):
            item.add_marker(pytest.mark.slow)
