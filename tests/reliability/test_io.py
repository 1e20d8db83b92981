"""Nothing lost on disk: atomic folders survive kills at any point, leftovers are cleaned, output
locations are checked before work starts, and everything written gets the same permissions."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from interp import io
from interp.errors import InterpError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_force_moves_the_old_folder_aside_before_the_new_one_moves_in(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "result.json").write_text("old")
    calls = []
    real = os.replace

    def spy(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if Path(dst) == out:  # the moment between the two renames: the old folder must be whole, aside
            aside = [p for p in tmp_path.glob(".run.*.old")]
            assert len(aside) == 1 and (aside[0] / "run" / "result.json").read_text() == "old"
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", spy)
    with io.atomic_dir(out, force=True) as tmp:
        (tmp / "result.json").write_text("new")
    assert (out / "result.json").read_text() == "new"
    assert [dst for _, dst in calls] == ["run", "run"]  # old -> aside/run, then tmp -> run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing left behind


KILLED = """
import os, sys
from interp import io
stage = sys.argv[2]
real = os.replace
def die_between(src, dst):
    real(src, dst)
    if stage == "aside" and str(dst).endswith(".old/run"):
        os._exit(9)  # killed after moving the old folder aside, before moving the new one in
io.os.replace = die_between
with io.atomic_dir(sys.argv[1], force=True) as tmp:
    (tmp / "result.json").write_text("new")
    if stage == "building":
        os._exit(9)  # killed while building
"""


@pytest.mark.parametrize("stage", ["building", "aside"])
def test_a_killed_run_loses_nothing_and_the_next_run_cleans_up(tmp_path, stage):
    out = tmp_path / "run"
    out.mkdir()
    (out / "result.json").write_text("old")
    proc = subprocess.run([sys.executable, "-c", KILLED, str(out), stage], capture_output=True)
    assert proc.returncode == 9
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers  # the killed run left its temporary folder(s)
    if stage == "building":
        assert (out / "result.json").read_text() == "old"
    else:
        assert not out.exists()  # the old folder is whole, moved aside, and will be put back
    io.clean_leftovers(out)
    assert (out / "result.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with io.atomic_dir(out, force=True) as tmp:
        (tmp / "result.json").write_text("next")
    assert (out / "result.json").read_text() == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_leftovers_of_live_runs_are_kept(tmp_path):
    mine = tmp_path / f".run.{os.getpid()}.abc.tmp"
    mine.mkdir()
    io.clean_leftovers(tmp_path / "run")
    assert mine.exists()


def test_output_location_checked_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InterpError, match="is a file"):
        io.check_out_dir(tmp_path / "file", force=False)
    with pytest.raises(InterpError, match="is a file, so no folder"):
        io.check_out_dir(tmp_path / "file" / "sub", force=False)
    full = tmp_path / "full"
    full.mkdir()
    (full / "a").write_text("x")
    with pytest.raises(InterpError, match="--force"):
        io.check_out_dir(full, force=False)
    assert io.check_out_dir(full, force=True) == full


def test_read_only_parent_refused_by_access(tmp_path, monkeypatch):
    monkeypatch.setattr(io.os, "access", lambda path, mode: False)
    with pytest.raises(InterpError, match="not writable"):
        io.check_out_dir(tmp_path / "out", force=False)


def test_full_disk_refused_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(
        io.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1024, 1024)
    )
    with pytest.raises(InterpError, match="free"):
        io.check_out_dir(tmp_path / "out", force=False)


def test_everything_written_gets_the_same_permissions(tmp_path):
    import torch
    from safetensors.torch import save_file

    from saes.format import atomic_dir as sae_dir

    old = os.umask(0o022)
    try:
        with io.atomic_dir(tmp_path / "run") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "weights.safetensors"))  # safetensors: 0600
            (tmp / "sub").mkdir(mode=0o700)
        with io.atomic_path(tmp_path / "figure.png") as tmp:
            tmp.write_bytes(b"png")
        with sae_dir(tmp_path / "sae") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "sae_weights.safetensors"))
        io.atomic_write_json(tmp_path / "result.json", {})
        reference = tmp_path / "plain.txt"
        reference.write_text("x")
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    folders = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert {_mode(p) for p in files} == {_mode(reference)} == {0o644}
    assert {_mode(p) for p in folders} == {0o755}


def test_a_file_write_that_raises_midway_leaves_the_old_file(tmp_path):
    from matplotlib.figure import Figure

    path = tmp_path / "figure.png"
    path.write_bytes(b"old")
    figure = Figure()

    def half_then_fail(fname, **kwargs):
        Path(fname).write_bytes(b"half")
        raise RuntimeError("drawing failed")

    figure.savefig = half_then_fail
    with pytest.raises(RuntimeError, match="drawing failed"):
        io.save_figure(figure, path)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]  # no temporary file left
    with pytest.raises(InterpError, match=r"\.png, \.pdf, \.svg"):
        io.save_figure(Figure(), tmp_path / "figure.jpg")


def test_save_figure_closes_only_the_figure_it_saved(tmp_path):
    import matplotlib.pyplot as plt

    mine, theirs = plt.figure(), plt.figure()  # `theirs` stands for a notebook's open figure
    try:
        io.save_figure(mine, tmp_path / "mine.svg")
        assert (tmp_path / "mine.svg").read_bytes()[:5] == b"<?xml"
        assert not plt.fignum_exists(mine.number) and plt.fignum_exists(theirs.number)
    finally:
        plt.close(mine)
        plt.close(theirs)


def test_a_folder_write_that_raises_midway_leaves_the_old_folder(tmp_path):
    from saes.format import atomic_dir as sae_dir

    for write in (lambda out: io.atomic_dir(out, force=True), sae_dir):
        out = tmp_path / "run"
        out.mkdir(exist_ok=True)
        (out / "cfg.json").write_text("old")
        with pytest.raises(RuntimeError, match="midway"), write(out) as tmp:
            (tmp / "cfg.json").write_text("new")
            raise RuntimeError("midway")
        assert (out / "cfg.json").read_text() == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_non_empty_folder_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "result.json").write_text("old")
    with pytest.raises(InterpError, match="--force"), io.atomic_dir(out) as tmp:
        (tmp / "result.json").write_text("new")
    assert (out / "result.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_library_code_never_closes_every_figure():
    root = Path(io.__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(root))
        for package in ("interp", "saes", "circuits", "experiments")
        for path in (root / package).rglob("*.py")
        if 'close("all")' in path.read_text() or "close('all')" in path.read_text()
    ]
    assert not offenders, "plt.close('all') closes the caller's figures too: " + ", ".join(offenders)
