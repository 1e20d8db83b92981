"""The CLI starts without torch and sets a CPU thread policy the user can override."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from interp.threads import free_cores, usable_cores

PROBE = """
import json, os, sys
from interp import cli
cli.apply_thread_policy()
cli._register_all()
print(json.dumps({"torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                  "omp": os.environ.get("OMP_NUM_THREADS"), "wait": os.environ.get("OMP_WAIT_POLICY"),
                  "tok": os.environ.get("TOKENIZERS_PARALLELISM")}))
"""


def _probe(**env: str) -> dict:
    policy = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "TOKENIZERS_PARALLELISM")
    clean = {k: v for k, v in os.environ.items() if k not in policy}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_registering_every_command_imports_neither_torch_nor_transformers():
    found = _probe()
    assert not found["torch"] and not found["transformers"]


def test_thread_policy_is_set_only_where_the_user_did_not():
    found = _probe()
    assert found["wait"] == "PASSIVE"
    assert 1 <= int(found["omp"]) <= usable_cores()
    assert _probe(OMP_NUM_THREADS="3", OMP_WAIT_POLICY="ACTIVE") | {"torch": 0, "transformers": 0} == {
        "torch": 0,
        "transformers": 0,
        "omp": "3",
        "wait": "ACTIVE",
        "tok": None,
    }
    assert 1 <= free_cores() <= usable_cores()


def test_one_thread_also_keeps_the_tokenizers_to_one():
    assert _probe(OMP_NUM_THREADS="1")["tok"] == "false"
    assert _probe(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="true")["tok"] == "true"


def test_nothing_changes_once_torch_is_imported(monkeypatch):
    import torch  # noqa: F401

    from interp.threads import apply_thread_policy

    env: dict[str, str] = {}
    assert apply_thread_policy(env) == {} and env == {}
