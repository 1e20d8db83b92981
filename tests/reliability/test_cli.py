"""Bad CLI input across commands: non-zero exit, one clear line, never a traceback; checked before work.

`interp demo --quick` is also run end to end here.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import interp.zoo
from interp.cli import main

CUDA = "cuda:99" if torch.cuda.is_available() else "cuda"
NO_CUDA = "CUDA devices" if torch.cuda.is_available() else "CPU-only build of torch"


def cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err and "Traceback" not in captured.out
    return exit_info.value.code or 0, " ".join(err.split())


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """Model folders with a corrupt config.json and a truncated weights file."""
    root = tmp_path_factory.mktemp("broken")
    src = interp.zoo.path("ioi-tiny")
    shutil.copytree(src, root / "config")
    (root / "config" / "config.json").write_text("{ not json")
    shutil.copytree(src, root / "weights")
    weights = next((root / "weights").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    (root / "afile").write_text("x")
    return root


CASES = [
    # (args, substring of the one error line); OUT is replaced by a fresh folder, FILE by an existing file
    (["eval", "ioi-tiny", "--device", CUDA], NO_CUDA),
    (["eval", "ioi-tiny", "--device", "tpu"], "expected cpu, cuda"),
    (["eval", "ioi-tiny", "--seed", "-1"], "Invalid value"),
    (["eval", "ioi-tiny", "--n", "0"], "Invalid value"),
    (["eval", "shakespeare-tiny"], "no task in its card"),
    (["demo", "--model", "shakespeare-tiny", "--out", "OUT"], "names no task"),
    (["demo", "--out", "FILE"], "is a file"),
    (["demo", "--device", CUDA, "--out", "OUT"], NO_CUDA),
    (["demo", "--seed", "-1", "--out", "OUT"], "Invalid value"),
    (["circuit", "ioi-tiny", "--task", "ioi", "--out", "FILE"], "is a file"),
    (["circuit", "ioi-tiny", "--task", "ioi", "--out", "OUT", "--device", CUDA], NO_CUDA),
    (["circuit", "ioi-tiny", "--task", "ioi", "--out", "OUT", "--n", "0"], "Invalid value"),
    (["circuit", "ioi-tiny", "--task", "ioi", "--out", "OUT", "--threshold", "nan"], "finite"),
    (["align", "hier-eq-tiny", "--task", "hierarchical_equality", "--out", "OUT", "--device", CUDA], NO_CUDA),
    (
        ["align", "hier-eq-tiny", "--task", "hierarchical_equality", "--out", "OUT", "--seed", "-1"],
        "Invalid value",
    ),
    (["align", "hier-eq-tiny", "--task", "hierarchical_equality", "--out", "FILE"], "is a file"),
    (["concepts", "concepts-tiny", "--out", "OUT", "--device", CUDA], NO_CUDA),
    (["concepts", "concepts-tiny", "--out", "OUT", "--seed", "-1"], "Invalid value"),
    (["concepts", "concepts-tiny", "--out", "FILE"], "is a file"),
    (["patch", "ioi-tiny", "--task", "ioi", "--out", "OUT", "--device", CUDA], NO_CUDA),
    (["patch", "ioi-tiny", "--task", "ioi", "--out", "OUT", "--n", "0"], "Invalid value"),
    (["patch", "./no/such/model", "--task", "ioi", "--out", "OUT"], "no such folder"),
    (["patch", "BROKEN/config", "--task", "ioi", "--out", "OUT"], "not a valid JSON"),
    (["patch", "BROKEN/weights", "--task", "ioi", "--out", "OUT"], "could not read the model"),
    (["trace", "facts-tiny", "--task", "facts", "--out", "OUT", "--samples", "0"], "Invalid value"),
    (["sae", "eval", "OUT", "--eval-windows", "-3"], "--eval-windows must be >= 1"),
]


@pytest.mark.parametrize(
    "args, message", CASES, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in enumerate(CASES)]
)
def test_bad_cli_input_is_one_line(args, message, tmp_path, capsys, broken):
    (tmp_path / "file").write_text("x")
    swap = {"OUT": str(tmp_path / "out"), "FILE": str(tmp_path / "file")}
    args = [swap.get(a, a.replace("BROKEN", str(broken))) for a in args]
    code, err = cli(args, capsys)
    assert code != 0 and message in err, err
    assert not (tmp_path / "out" / "result.json").exists()


def test_demo_quick_writes_a_report(tmp_path, capsys):
    out = tmp_path / "demo"
    code, _ = cli(["demo", "--quick", "--out", str(out)], capsys)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["command"] == "demo" and result["config"] == {"quick": True}
    assert result["metrics"]["evaluate"]["accuracy"] > 0.9  # ioi-tiny solves its task
    assert (out / "report.md").is_file()
    for figure in result["figures"]:
        assert (out / figure).is_file(), figure
    code, err = cli(["demo", "--quick", "--out", str(out)], capsys)
    assert code == 2 and "--force" in err  # a finished report is not overwritten


def test_a_full_disk_mid_run_is_one_line(tmp_path, capsys, monkeypatch):
    """ENOSPC while writing (after the up-front checks passed): one line, exit 1, no partial folder."""
    import errno

    from interp import io

    real = io.atomic_write_text

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(io, "atomic_write_text", full)
    out = tmp_path / "circuit"
    code, err = cli(
        ["circuit", "ioi-tiny", "--task", "ioi", "--method", "eap", "--n", "4", "--out", str(out)], capsys
    )
    monkeypatch.setattr(io, "atomic_write_text", real)
    assert code == 1 and "No space left on device" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
