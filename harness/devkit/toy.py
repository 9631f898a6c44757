"""A toy model, dataset and identity method: small, fast, deterministic stand-ins.

``harness check-plugin`` runs every contract on them (a method is applied to ``toy-cnn``
trained on ``toy-blobs``; a backend runs the ``toy-identity`` artifact), and the fixtures of
:mod:`harness.testing` hand them to plugin authors' tests. They are not registered in an
ordinary run: pass this module as an extra plugin (``load_host(extra=[(PLUGIN_NAME, toy)])``)
to get them.
"""

from __future__ import annotations

from typing import Any

from harness.api import (
    ApplyContext,
    DatasetContext,
    DatasetSpec,
    MethodSpec,
    ModelContext,
    ModelSpec,
    Split,
    Splits,
    fingerprint_splits,
    hookimpl,
)

#: The plugin name under which the toy things are registered.
PLUGIN_NAME = "harness-toy"
MODEL = "toy-cnn"
DATASET = "toy-blobs"
METHOD = "toy-identity"

#: Shape of one sample, classes and split sizes of ``toy-blobs``.
INPUT_SHAPE = (1, 8, 8)
NUM_CLASSES = 4
SIZES = {"train": 128, "calibration": 32, "test": 64}
SEED = 1234


def load_blobs(ctx: DatasetContext | None = None) -> Splits:
    """Four Gaussian blobs in 8x8 images: a learnable, labelled, deterministic dataset.

    Each class has a fixed random mean image; samples are the mean plus unit-variance noise
    scaled by 0.5, clipped to [0, 1] like pixel data. The same arrays on every call.
    """
    import numpy as np

    rng = np.random.default_rng(SEED)
    means = rng.uniform(0.0, 1.0, size=(NUM_CLASSES, *INPUT_SHAPE)).astype(np.float32)
    splits = {}
    for name, n in SIZES.items():
        y = (np.arange(n) % NUM_CLASSES).astype(np.int64)
        x = means[y] + np.float32(0.5) * rng.standard_normal((n, *INPUT_SHAPE), dtype=np.float32)
        x = np.clip(x, 0.0, 1.0).astype(np.float32)
        splits[name] = Split(x=x, y=y)
    return Splits(train=splits["train"], calibration=splits["calibration"], test=splits["test"],
                  input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES, labelled=True,
                  fingerprint=fingerprint_splits(splits))


def build_cnn(ctx: ModelContext) -> Any:
    """A :class:`harness.devkit.toy_nets.ToyCNN` for the dataset's input shape and classes."""
    from harness.devkit.toy_nets import ToyCNN

    return ToyCNN(tuple(ctx.input_shape), int(ctx.num_classes or 1))


def train_cnn(module: Any, ctx: ModelContext) -> dict:
    """Ten epochs of the reference trainer: about 0.1 s, well above chance on ``toy-blobs``."""
    from harness.build.training import train_classifier

    return train_classifier(module, ctx.splits, seed=ctx.seed, epochs=10, lr=1e-2, batch_size=32)


def apply_identity(ctx: ApplyContext) -> Any:
    """No compression: the module as it came."""
    return ctx.module


def no_claims(params: Any) -> dict:
    """The identity promises nothing."""
    return {}


TOY_CNN = ModelSpec(name=MODEL, build=build_cnn, train=train_cnn, weights="trained on the dataset (10 epochs)",
                    description="conv 3x3 (4 channels) + ReLU + linear: the conformance check's model")
TOY_BLOBS = DatasetSpec(name=DATASET, load=load_blobs,
                        description="4 Gaussian blobs in 1x8x8 images; 128/32/64 train/calibration/test")
TOY_IDENTITY = MethodSpec(name=METHOD, apply=apply_identity, claims=no_claims,
                          description="no compression: the artifact backends are checked on")


@hookimpl
def harness_register_models(register):
    """Register ``toy-cnn``."""
    register(TOY_CNN)


@hookimpl
def harness_register_datasets(register):
    """Register ``toy-blobs``."""
    register(TOY_BLOBS)


@hookimpl
def harness_register_methods(register):
    """Register ``toy-identity``."""
    register(TOY_IDENTITY)
