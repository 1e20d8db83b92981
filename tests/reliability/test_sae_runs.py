"""`interp sae train` runs: the output folder is checked first, --resume continues only the same run,
bad numbers and devices are one line, Ctrl-C saves a checkpoint, a corrupt checkpoint falls back."""

from __future__ import annotations

import json
import logging
import os
import signal

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import saes
from interp.cli import main
from saes.checkpoint import checkpoint_dirs
from tests.saes.helpers import VOCAB, PlantedFeatures, assert_same_weights, tiny_gpt2, token_dataset

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    tiny_gpt2().save_pretrained(root / "model")
    torch.manual_seed(0)
    short = GPT2Config(
        n_layer=1, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    GPT2LMHeadModel(short).save_pretrained(root / "short")  # 16 positions < the default 64
    token_dataset(rows=60, length=80).save_to_disk(str(root / "data"))
    return root


def cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exit_info.value.code or 0, " ".join(err.split())


def train_args(files, out, *extra):
    return [
        "sae",
        "train",
        str(files / "model"),
        "--hook",
        HOOK,
        "--arch",
        "topk",
        "--k",
        "4",
        "--expansion",
        "2",
        "--tokens",
        "2048",
        "--batch-size",
        "256",
        "--context-len",
        "32",
        "--dataset",
        str(files / "data"),
        "--eval-windows",
        "2",
        "--out",
        str(out),
        "--json",
        *extra,
    ]


def test_out_is_not_overwritten_and_resume_checks_the_run(files, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(train_args(files, out), capsys)[0] == 0
    first = (out / "result.json").read_text()
    code, err = cli(train_args(files, out), capsys)
    assert code == 2 and "not empty" in err and "--force" in err
    assert (out / "result.json").read_text() == first  # the finished run is untouched
    code, err = cli(train_args(files, out, "--resume", "--seed", "1"), capsys)
    assert code == 2 and "seed 0 -> 1" in err
    code, err = cli(train_args(files, out, "--resume", "--lr", "0.01"), capsys)
    assert code == 2 and "lr 0.001 -> 0.01" in err
    assert (out / "result.json").read_text() == first
    assert cli(train_args(files, out, "--resume", "--eval-windows", "1"), capsys)[0] == 0  # same run
    assert cli(train_args(files, out, "--force", "--seed", "2"), capsys)[0] == 0
    assert json.loads((out / "result.json").read_text())["seed"] == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tokens", "0"], "--tokens must be >= 1"),
        (["--tokens", "-5"], "--tokens must be >= 1"),
        (["--eval-windows", "-3"], "--eval-windows must be >= 1"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--lr", "nan"], "--lr must be finite"),
        (["--context-len", "500"], "longer than the model's 64 positions"),
        (["--device", "cuda"], "use --device cpu"),
        (["--device", "tpu"], "expected cpu, cuda"),
        (["--hook", "blocks.0.attn.hook_pattern"], "attention pattern"),
        (["--force", "--resume"], "pass one of them"),
    ],
)
def test_bad_flags_are_one_line(files, tmp_path, capsys, extra, message):
    if extra == ["--device", "cuda"] and torch.cuda.is_available():
        extra = ["--device", "cuda:99"]
        message = "CUDA devices"
    out = tmp_path / "x"
    code, err = cli(train_args(files, out, *extra), capsys)
    assert code == 2 and message in err
    assert not out.exists()  # refused before anything was written


def test_out_problems_found_before_work(files, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = cli(train_args(files, tmp_path / "file"), capsys)
    assert code == 2 and "is a file" in err
    code, err = cli(train_args(files, tmp_path / "file" / "sub"), capsys)
    assert code == 2 and "no folder can be made" in err


def test_default_context_len_comes_from_the_model(files, tmp_path, capsys):
    out = tmp_path / "short"
    args = [
        "sae",
        "train",
        str(files / "short"),
        "--hook",
        HOOK,
        "--arch",
        "topk",
        "--k",
        "2",
        "--expansion",
        "2",
        "--tokens",
        "1024",
        "--batch-size",
        "128",
        "--dataset",
        str(files / "data"),
        "--eval-windows",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    assert cli(args, capsys)[0] == 0
    assert json.loads((out / "result.json").read_text())["inputs"]["context_len"] == 16


def _train_cfg(tmp_path, **kw):
    return saes.TrainConfig(
        lr=5e-3,
        total_steps=12,
        lr_warmup_steps=2,
        lr_decay_steps=4,
        sparsity_warmup_steps=3,
        dead_window_tokens=2048,
        progress=False,
        checkpoint_dir=str(tmp_path),
        checkpoint_every=100,
        **kw,
    )


def _reference_and_ctrl_c_batches(tmp_path):
    """A relu SAE config, its uninterrupted 12-step run, and the same batches with a SIGINT sent
    while step 5 is being prepared."""
    planted = PlantedFeatures()
    cfg = saes.SAEConfig("relu", d_in=planted.d, d_sae=32)
    reference = saes.Trainer(cfg, _train_cfg(tmp_path / "ref")).fit(planted.batches(12))

    def interrupted():
        for i, batch in enumerate(planted.batches(12)):
            if i == 5:
                os.kill(os.getpid(), signal.SIGINT)
            yield batch

    return cfg, reference, interrupted(), planted


@pytest.mark.parametrize("sigint", [signal.default_int_handler], indirect=True)
def test_ctrl_c_writes_a_checkpoint_and_resume_is_exact(tmp_path, sigint):
    cfg, reference, interrupted, planted = _reference_and_ctrl_c_batches(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        saes.Trainer(cfg, _train_cfg(tmp_path / "run")).fit(interrupted)
    (saved,) = checkpoint_dirs(tmp_path / "run")
    assert saved.name == "step_000000006"  # the step in progress finished, then it was saved
    resumed = saes.Trainer(cfg, _train_cfg(tmp_path / "run")).fit(planted.batches(12), resume=True)
    assert_same_weights(reference, resumed)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("sigint", [signal.SIG_IGN], indirect=True)
def test_an_ignored_ctrl_c_stays_ignored(tmp_path, sigint):
    """A run started with SIGINT ignored (`nohup interp sae train ... &`) is not made interruptible."""
    cfg, reference, interrupted, _ = _reference_and_ctrl_c_batches(tmp_path)
    trained = saes.Trainer(cfg, _train_cfg(tmp_path / "run")).fit(interrupted)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert_same_weights(reference, trained)  # ran to the end, untouched


def test_corrupt_newest_checkpoint_falls_back_saying_so(tmp_path, caplog):
    planted = PlantedFeatures()
    cfg = saes.SAEConfig("relu", d_in=planted.d, d_sae=32)
    tc = saes.TrainConfig(
        lr=5e-3,
        total_steps=12,
        progress=False,
        checkpoint_dir=str(tmp_path),
        checkpoint_every=4,
        keep_checkpoints=3,
    )
    saes.Trainer(cfg, tc).fit(planted.batches(8))  # steps 4 and 8
    newest = checkpoint_dirs(tmp_path)[-1]
    (newest / "trainer_state.pt").write_bytes(b"truncated")
    trainer = saes.Trainer(cfg, tc)
    with caplog.at_level(logging.WARNING, logger="saes.trainer"):
        trainer.fit(planted.batches(12), resume=True)
    assert "corrupt" in caplog.text and "step_000000004" in caplog.text
    assert trainer.step == 12
