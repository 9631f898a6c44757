"""Text datasets: ``text-lm`` (language modelling), ``text-embedding`` and ``text-classification``.

The default corpus, ``python-docs``, is the docstrings of a fixed list of modules of Python's own
standard library, read from its source files with :mod:`ast` (nothing imported, nothing
downloaded): it exists on every machine that runs the harness. Its exact text depends on the
Python version, and the fingerprint of the splits covers it. ``source`` may instead name a UTF-8
text file. Token ids are bytes (``tokenizer = "bytes"``, vocabulary 256) or come from a local
Hugging Face tokenizer folder (``package:NAME/sub`` works as for the models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import DatasetContext, DatasetSpec, Param, Split, Splits, fingerprint_splits, hookimpl

#: Standard-library modules whose docstrings make the ``python-docs`` corpus (missing ones skipped).
STDLIB_MODULES = (
    "argparse", "calendar", "collections/__init__", "csv", "dataclasses", "difflib", "email/message",
    "fractions", "functools", "gettext", "http/client", "inspect", "ipaddress", "json/__init__",
    "logging/__init__", "mailbox", "pathlib", "pathlib/__init__", "pickle", "pydoc", "shutil",
    "statistics", "string", "subprocess", "tarfile", "textwrap", "threading", "typing",
    "unittest/case", "urllib/parse", "zipfile", "zipfile/__init__",
)


def docstrings(source: str) -> list[str]:
    """Module, class and function docstrings of one Python source, cleaned, in file order."""
    import ast
    import inspect

    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc and doc.strip():
                out.append(inspect.cleandoc(doc))
    return out


def python_docs() -> list[str]:
    """The ``python-docs`` corpus: every docstring of :data:`STDLIB_MODULES`, module by module."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    docs: list[str] = []
    for name in STDLIB_MODULES:
        f = root / f"{name}.py"
        if f.is_file():
            docs += docstrings(f.read_text(encoding="utf-8"))
    if len(docs) < 100:
        raise ValueError(f"python-docs: found only {len(docs)} docstrings under {root}")
    return docs


def corpus(source: str) -> list[str]:
    """Documents of a source: ``python-docs``, or the paragraphs of a UTF-8 text file."""
    if source == "python-docs":
        return python_docs()
    path = Path(source).expanduser()
    if not path.is_file():
        raise ValueError(f"text source {source!r}: not 'python-docs' and not a file")
    return [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def _splits(parts: dict[str, tuple[dict, Any]], input_shape: tuple[int, ...], num_classes: int | None) -> Splits:
    splits = {k: Split(x=x, y=y) for k, (x, y) in parts.items()}
    return Splits(train=splits["train"], calibration=splits["calibration"], test=splits["test"],
                  input_shape=input_shape, num_classes=num_classes, labelled=True,
                  fingerprint=fingerprint_splits(splits))


def load_lm(ctx: DatasetContext) -> Splits:
    """Byte-level windows of ``seq_len`` tokens over the corpus, documents joined by blank lines.

    The windows are cut in order and dealt out by position: of every 20, one goes to test, one to
    calibration, the rest to train (so every split samples the whole corpus); ``max_eval`` caps
    test and calibration.
    """
    import numpy as np

    p = ctx.params
    text = "\n\n".join(corpus(p["source"]))
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    t = int(p["seq_len"])
    windows = data[: len(data) // t * t].reshape(-1, t)
    pos = np.arange(len(windows)) % 20
    test, cal, train = windows[pos == 0][: p["max_eval"]], windows[pos == 1][: p["max_eval"]], windows[pos >= 2]
    parts = {k: ({"input_ids": np.ascontiguousarray(v)}, None)
             for k, v in (("train", train), ("calibration", cal), ("test", test))}
    return _splits(parts, (t,), 256)


def _tokenize(tokenizer_path: str, texts: list[str], max_length: int) -> dict:
    import numpy as np

    from harness_plugins import hf

    enc = hf.load_tokenizer(tokenizer_path)(texts, padding="max_length", truncation=True, max_length=max_length,
                                            return_tensors="np")
    return {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}


def sentences(source: str) -> list[str]:
    """The first sentence (or line) of each document, de-duplicated in order, 20 characters or more."""
    seen: dict[str, None] = {}
    for doc in corpus(source):
        first = doc.split("\n\n")[0].replace("\n", " ").split(". ")[0].strip()
        if len(first) >= 20:
            seen.setdefault(first, None)
    return list(seen)


def load_embedding(ctx: DatasetContext) -> Splits:
    """``n`` sentences of the corpus, tokenized with the model's tokenizer and padded to ``max_length``.

    Every split holds the same texts: an embedding is scored against the dense model's embedding of
    the same text, not against labels.
    """
    p = ctx.params
    texts = sentences(p["source"])[: p["n"]]
    x = _tokenize(p["tokenizer"], texts, int(p["max_length"]))
    return _splits({k: (x, None) for k in ("train", "calibration", "test")}, (int(p["max_length"]),), None)


def load_classification(ctx: DatasetContext) -> Splits:
    """Labelled texts from a JSON-lines file (``{"text": ..., "label": ...}`` per line).

    Classes are the sorted distinct labels; every ``1/test_fraction``-th line (by position) is test,
    the next calibration, the rest train.
    """
    import json

    import numpy as np

    p = ctx.params
    path = Path(p["path"]).expanduser()
    if not path.is_file():
        raise ValueError(f"text-classification: {path} does not exist")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    classes = sorted({r["label"] for r in rows}, key=str)
    y = np.array([classes.index(r["label"]) for r in rows], dtype=np.int64)
    x = _tokenize(p["tokenizer"], [r["text"] for r in rows], int(p["max_length"]))
    every = max(2, round(1 / float(p["test_fraction"])))
    pos = np.arange(len(rows)) % every
    parts = {}
    for name, mask in (("test", pos == 0), ("calibration", pos == 1), ("train", pos >= 2)):
        parts[name] = ({k: np.ascontiguousarray(v[mask]) for k, v in x.items()}, np.ascontiguousarray(y[mask]))
    return _splits(parts, (int(p["max_length"]),), len(classes))


def _source() -> Param:
    return Param("source", str, default="python-docs", help="'python-docs' (stdlib docstrings) or a text file")


TEXT_LM = DatasetSpec(
    name="text-lm", load=load_lm, task="language-modelling", metric="perplexity",
    params=(_source(),
            Param("seq_len", int, default=64, min=2, help="tokens (bytes) per window"),
            Param("max_eval", int, default=128, min=1, help="at most this many test (and calibration) windows")),
    description="byte-level language modelling on Python's own docstrings (or a text file); perplexity",
)

TEXT_EMBEDDING = DatasetSpec(
    name="text-embedding", load=load_embedding, task="embedding", metric="fidelity",
    params=(_source(),
            Param("tokenizer", str, help="local tokenizer folder (the model's), or package:NAME/sub"),
            Param("n", int, default=256, min=2, help="sentences"),
            Param("max_length", int, default=32, min=2, help="tokens per sentence (padded, truncated)")),
    description="sentences of Python's docstrings (or a text file) for embedding fidelity and retrieval",
)

TEXT_CLASSIFICATION = DatasetSpec(
    name="text-classification", load=load_classification,
    params=(Param("path", str, path="file", help="JSON-lines file of {\"text\", \"label\"}"),
            Param("tokenizer", str, help="local tokenizer folder (the model's), or package:NAME/sub"),
            Param("max_length", int, default=64, min=2, help="tokens per text (padded, truncated)"),
            Param("test_fraction", float, default=0.2, min=0.0, max=0.5, min_exclusive=True,
                  help="share of lines held out for test")),
    description="labelled texts from a JSON-lines file, tokenized with the model's tokenizer",
)


@hookimpl
def harness_register_datasets(register):
    """Register ``text-lm``, ``text-embedding`` and ``text-classification``."""
    for spec in (TEXT_LM, TEXT_EMBEDDING, TEXT_CLASSIFICATION):
        register(spec)
