"""interp.tasks: determinism, counterfactual structure, tokenization and metrics of every task."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from interp import tasks  # noqa: E402
from interp.errors import InterpError  # noqa: E402
from interp.tasks.vocab import PAD_ID, TOKEN_ID, VOCAB  # noqa: E402

CORE = ["ioi", "induction", "greater_than", "hierarchical_equality", "facts"]
CONFIGS = [
    ("ioi", {}),
    ("ioi", {"corruption": "abc"}),
    ("induction", {}),
    ("induction", {"length": 8}),
    ("greater_than", {}),
    ("hierarchical_equality", {}),
    ("hierarchical_equality", {"corrupt": "right"}),
    ("facts", {}),
]
IDS = [f"{name}-{'-'.join(map(str, cfg.values())) or 'default'}" for name, cfg in CONFIGS]


@pytest.fixture(scope="module")
def tok():
    return tasks.tokenizer()


def test_registry_lists_core_tasks():
    assert set(CORE) <= set(tasks.names())
    assert tasks.get("greater-than").name == "greater_than"  # alias


@pytest.mark.parametrize(("name", "cfg"), CONFIGS, ids=IDS)
def test_generate_is_deterministic(name, cfg):
    task = tasks.get(name, **cfg)
    a, b, c = task.generate(64, seed=3), task.generate(64, seed=3), task.generate(64, seed=4)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert torch.equal(a.answer, b.answer) and torch.equal(a.wrong, b.wrong)
    assert a.variables == b.variables and a.clean_text == b.clean_text
    assert all(torch.equal(a.positions[k], b.positions[k]) for k in a.positions)
    assert not torch.equal(a.clean, c.clean)


@pytest.mark.parametrize(("name", "cfg"), CONFIGS, ids=IDS)
def test_batch_shapes_and_positions(name, cfg):
    batch = tasks.get(name, **cfg).generate(50, seed=0)
    n, length = batch.clean.shape
    assert n == len(batch) == 50 and batch.corrupted.shape == (n, length)
    assert batch.answer.shape == batch.wrong.shape == (n,)
    assert (batch.clean[:, 0] == TOKEN_ID["<bos>"]).all() and not (batch.clean == PAD_ID).any()
    assert (batch.positions["END"] == length - 1).all()
    for pos in batch.positions.values():
        assert pos.shape == (n,) and pos.dtype == torch.long and ((pos > 0) & (pos < length)).all()
    for values in batch.variables.values():
        assert len(values) == n
    assert (batch.answer != batch.wrong).all()


@pytest.mark.parametrize(("name", "cfg"), CONFIGS, ids=IDS)
def test_corrupted_differs_only_at_documented_positions(name, cfg):
    task = tasks.get(name, **cfg)
    batch = task.generate(200, seed=1)
    allowed = torch.zeros_like(batch.clean, dtype=torch.bool)  # [batch, pos]
    rows = torch.arange(len(batch))
    for pos_name in task.corrupted_positions:
        allowed[rows, batch.positions[pos_name]] = True
    differs = batch.clean != batch.corrupted
    assert not (differs & ~allowed).any(), "corrupted changed an undocumented position"
    assert differs.any(dim=1).all(), "some corrupted prompt equals its clean prompt"


@pytest.mark.parametrize(("name", "cfg"), CONFIGS, ids=IDS)
def test_tokenization_round_trips(name, cfg, tok):
    batch = tasks.get(name, **cfg).generate(40, seed=2)
    for texts, ids in ((batch.clean_text, batch.clean), (batch.corrupted_text, batch.corrupted)):
        encoded = tok(list(texts)).input_ids
        assert torch.equal(torch.tensor(encoded), ids)
        assert [tok.decode(row, skip_special_tokens=True) for row in encoded] == list(texts)
    for token in torch.cat([batch.answer, batch.wrong]).tolist():  # answers are single tokens
        word = tok.decode([token])
        assert " " not in word and tok(word).input_ids == [TOKEN_ID["<bos>"], token]


def test_tokenizer_save_load(tmp_path, tok):
    from transformers import AutoTokenizer

    tasks.save_tokenizer(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = tasks.get("ioi").generate(1, seed=0).clean_text[0]
    assert loaded(text).input_ids == tok(text).input_ids
    assert tasks.same_vocabulary(loaded) and len(loaded) == len(VOCAB)


def test_ioi_semantics():
    batch = tasks.get("ioi").generate(100, seed=0)
    rows = torch.arange(100)
    at = {k: batch.clean[rows, v] for k, v in batch.positions.items()}
    assert torch.equal(at["IO"], batch.answer) and torch.equal(at["S1"], batch.wrong)
    assert torch.equal(at["S2"], batch.wrong)
    assert torch.equal(batch.corrupted[rows, batch.positions["S2"]], batch.answer)  # s2_io flips the answer
    assert set(batch.variables["order"]) == {"ABBA", "BABA"} and len(set(batch.variables["template"])) > 1
    abc = tasks.get("ioi", corruption="abc").generate(100, seed=0)
    assert torch.equal(abc.clean, batch.clean)
    for row in abc.corrupted.tolist():
        names = [w for w in row if VOCAB[w] in tasks.vocab.NAMES]
        assert len(names) == len(set(names)) == 3


def test_induction_semantics():
    batch = tasks.get("induction").generate(100, seed=0)
    rows = torch.arange(100)
    p = batch.positions
    assert torch.equal(batch.clean[rows, p["A1"]], batch.clean[rows, p["END"]])
    assert torch.equal(batch.clean[rows, p["B1"]], batch.answer)
    assert torch.equal(batch.corrupted[rows, p["B1"]], batch.wrong)
    assert torch.equal(p["B1"], p["A1"] + 1) and len(set(p["A1"].tolist())) > 5
    for row in batch.clean[:, 1:-1].tolist():  # only A repeats
        assert len(row) == len(set(row))


def test_greater_than_semantics():
    batch = tasks.get("greater_than").generate(100, seed=0)
    for i in range(100):
        yy = batch.variables["yy"][i]
        correct = {int(VOCAB[t]) for t in batch.correct[i]}
        assert correct == set(range(yy + 1, 100))
        assert int(VOCAB[int(batch.answer[i])]) == yy + 1 and int(VOCAB[int(batch.wrong[i])]) == yy
        assert VOCAB[int(batch.corrupted[i, batch.positions["YEAR"][i]])].endswith("01")


def test_hierarchical_equality_semantics():
    batch = tasks.get("hierarchical_equality").generate(200, seed=0)
    v = batch.variables
    for i in range(200):
        assert v["left"][i] == (v["W"][i] == v["X"][i]) and v["right"][i] == (v["Y"][i] == v["Z"][i])
        assert v["output"][i] == (v["left"][i] == v["right"][i])
        assert VOCAB[int(batch.answer[i])] == str(v["output"][i]).lower()
    assert 0.35 < sum(v["output"]) / 200 < 0.65 and 0.35 < sum(v["left"]) / 200 < 0.65


def test_facts_semantics():
    task = tasks.get("facts")
    kb = task.knowledge_base()
    assert len(kb) == 64
    batch = task.generate(100, seed=0)
    for i in range(100):
        first, last = batch.variables["subject"][i].split()
        assert kb[(first, last)][batch.variables["relation"][i]] == VOCAB[int(batch.answer[i])]
    assert tasks.get("facts", kb_seed=1).knowledge_base() != kb


def test_metrics_on_constructed_logits():
    batch = tasks.get("ioi").generate(10, seed=0)
    vocab = len(VOCAB)
    logits = torch.zeros(10, batch.clean.shape[1], vocab)  # [batch, pos, vocab]
    rows = torch.arange(10)
    logits[rows, batch.positions["END"], batch.answer] = 3.0
    logits[rows, batch.positions["END"], batch.wrong] = 1.0
    assert batch.accuracy(logits) == 1.0
    assert batch.logit_diff(logits).item() == pytest.approx(2.0)
    assert batch.logit_diff_per_example(logits).shape == (10,)
    end = batch.end_logits(logits)  # [batch, vocab]
    assert batch.prob(end).item() == pytest.approx(torch.softmax(end[0], -1)[batch.answer[0]].item())
    assert batch.metrics(logits)["accuracy"] == 1.0
    logits.requires_grad_(True)
    batch.logit_diff(logits).backward()  # differentiable, for attribution methods
    assert logits.grad is not None


def test_greater_than_metrics_use_correct_sets():
    batch = tasks.get("greater_than").generate(20, seed=0)
    end = torch.zeros(20, len(VOCAB))  # [batch, vocab]
    end[:, TOKEN_ID["99"]] = 10.0  # 99 is later than every start year
    assert batch.accuracy(end) == 1.0 and batch.prob(end).item() > 0.9
    end[:, TOKEN_ID["00"]] = 20.0
    assert batch.accuracy(end) == 0.0


def test_bad_names_and_options():
    with pytest.raises(InterpError, match="unknown task 'iox'.*ioi"):
        tasks.get("iox")
    with pytest.raises(InterpError, match="no option"):
        tasks.get("ioi", colour="red")
    with pytest.raises(InterpError, match="corruption"):
        tasks.get("ioi", corruption="zzz")
    with pytest.raises(InterpError, match="not in the task vocabulary"):
        tasks.vocab.token_id("Zebedee")
