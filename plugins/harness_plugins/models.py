"""Models: ``mlp``, ``lenet5``, ``resnet-small``, ``wide-mlp`` and ``vit-tiny``, with seeded reference training
recipes, and the torchvision-compatible ``resnet18``, ``resnet50`` and ``mobilenet_v2`` (your weights, or seeded).

The torch modules live in :mod:`harness_plugins.nets`, imported inside ``build`` only, so
loading this plugin does not import torch.
"""

from __future__ import annotations

from typing import Any

from harness.api import ModelContext, ModelSpec, Param, hookimpl, train_classifier

WEIGHTS = "trained on the dataset's train split (seeded, cached by content hash)"

#: Reference recipes (Adam, cross-entropy, batch 64). On digits over seeds 0-5 they reach a
#: test top-1 of mlp 0.972-0.98, lenet5 0.969-0.99, resnet-small 0.964-0.98, in 0.2 s, 0.8 s
#: and 2.6 s on one CPU thread. The host keys cached weights by plugin version, not by recipe:
#: bump the distribution's version when changing one.
RECIPES: dict[str, dict[str, Any]] = {
    "mlp": dict(epochs=40, lr=3e-3, batch_size=64),
    "lenet5": dict(epochs=30, lr=1e-2, batch_size=64),
    "resnet-small": dict(epochs=40, lr=3e-3, batch_size=64),
    "vit-tiny": dict(epochs=60, lr=2e-3, batch_size=64),
}


def _num_classes(name: str, ctx: ModelContext) -> int:
    """The output size, or a clear error when the dataset has no classes."""
    if not ctx.num_classes:
        raise ValueError(f"{name} is a classifier: the dataset must give num_classes, "
                         f"got {ctx.num_classes!r}")
    return int(ctx.num_classes)


def build_mlp(ctx: ModelContext) -> Any:
    """An MLP: flatten, ``hidden`` ReLU units, linear classifier."""
    from harness_plugins import nets

    return nets.MLP(tuple(ctx.input_shape), _num_classes("mlp", ctx), hidden=int(ctx.params["hidden"]))


def build_lenet5(ctx: ModelContext) -> Any:
    """LeNet-5 for ``(C, H, W)`` inputs with H and W divisible by 4."""
    from harness_plugins import nets

    return nets.LeNet5(tuple(ctx.input_shape), _num_classes("lenet5", ctx))


def build_resnet_small(ctx: ModelContext) -> Any:
    """A small residual CNN (two basic blocks, no BatchNorm) for ``(C, H, W)`` inputs."""
    from harness_plugins import nets

    return nets.ResNetSmall(tuple(ctx.input_shape), _num_classes("resnet-small", ctx))


def build_vit_tiny(ctx: ModelContext) -> Any:
    """A small vision transformer (timm parameter names) sized by the parameters."""
    from harness_plugins import vit

    p = ctx.params
    return vit.ViT(tuple(ctx.input_shape), _num_classes("vit-tiny", ctx), patch=int(p["patch"]),
                   image_size=int(p["image_size"]), dim=int(p["dim"]), depth=int(p["depth"]),
                   heads=int(p["heads"]), mlp_ratio=float(p["mlp_ratio"]))


def build_resnet18(ctx: ModelContext) -> Any:
    """ResNet-18 with torchvision's parameter names (seeded initialisation; no reference training)."""
    from harness_plugins import nets

    return nets.ResNet18(tuple(ctx.input_shape), _num_classes("resnet18", ctx))


def build_resnet50(ctx: ModelContext) -> Any:
    """ResNet-50 with torchvision's parameter names (seeded initialisation; no reference training)."""
    from harness_plugins import nets

    return nets.ResNet50(tuple(ctx.input_shape), _num_classes("resnet50", ctx))


def build_mobilenet_v2(ctx: ModelContext) -> Any:
    """MobileNetV2 with torchvision's parameter names (seeded initialisation; no reference training)."""
    from harness_plugins import nets

    return nets.MobileNetV2(tuple(ctx.input_shape), _num_classes("mobilenet_v2", ctx))


def build_wide_mlp(ctx: ModelContext) -> Any:
    """A wide MLP: flatten, ``depth`` square Linear+ReLU layers of ``width`` (after one input projection),
    linear classifier: layers large enough (4096 x 4096 by default) that sparse and low-bit kernels are
    measured rather than dispatch overhead."""
    import math

    from torch import nn

    width, depth = int(ctx.params["width"]), int(ctx.params["depth"])
    layers: list[Any] = [nn.Flatten(), nn.Linear(math.prod(ctx.input_shape), width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, _num_classes("wide-mlp", ctx)))
    return nn.Sequential(*layers)


def train_wide_mlp(module: Any, ctx: ModelContext) -> dict:
    """Train a ``wide-mlp`` for ``epochs`` epochs (Adam 1e-3, batch 64); ``epochs=0`` keeps the seeded
    initialisation (latency work)."""
    epochs = int(ctx.params["epochs"])
    if epochs == 0:
        return {"epochs": 0, "note": "seeded initialisation kept (epochs=0)"}
    if ctx.splits is None or not ctx.splits.labelled:
        raise ValueError("wide-mlp: training needs a labelled dataset (or epochs=0)")
    return train_classifier(module, ctx.splits, seed=ctx.seed, epochs=epochs, lr=1e-3, batch_size=64)


def _train(name: str, module: Any, ctx: ModelContext) -> dict:
    """Train ``module`` in place with the shared seeded trainer and ``name``'s recipe."""
    if ctx.splits is None or not ctx.splits.labelled:
        raise ValueError(f"{name}: training needs a labelled dataset")
    # The trainer's summary (epochs, final loss, test top-1) is returned for the record.
    return train_classifier(module, ctx.splits, seed=ctx.seed, **RECIPES[name])


# Top-level functions rather than closures or partials, so the specs stay picklable by reference.
def train_mlp(module: Any, ctx: ModelContext) -> dict:
    """Train an ``mlp`` on the train split with its recipe (see :data:`RECIPES`)."""
    return _train("mlp", module, ctx)


def train_lenet5(module: Any, ctx: ModelContext) -> dict:
    """Train a ``lenet5`` on the train split with its recipe (see :data:`RECIPES`)."""
    return _train("lenet5", module, ctx)


def train_resnet_small(module: Any, ctx: ModelContext) -> dict:
    """Train a ``resnet-small`` on the train split with its recipe (see :data:`RECIPES`)."""
    return _train("resnet-small", module, ctx)


def train_vit_tiny(module: Any, ctx: ModelContext) -> dict:
    """Train a ``vit-tiny`` on the train split with its recipe (see :data:`RECIPES`)."""
    return _train("vit-tiny", module, ctx)


MLP = ModelSpec(
    name="mlp", build=build_mlp, train=train_mlp, weights=WEIGHTS,
    params=(Param("hidden", int, default=64, min=1, help="hidden units"),),
    description="flatten -> Linear(hidden) -> ReLU -> Linear(num_classes)",
)

LENET5 = ModelSpec(
    name="lenet5", build=build_lenet5, train=train_lenet5, weights=WEIGHTS,
    description="LeNet-5 with 3x3 same convolutions (2 conv + 3 linear); H and W divisible by 4",
)

RESNET_SMALL = ModelSpec(
    name="resnet-small", build=build_resnet_small, train=train_resnet_small, weights=WEIGHTS,
    description="3x3 stem (16 ch), two residual conv+ReLU blocks (16, 32 ch), global average pool, "
                "linear; no BatchNorm",
)

VIT_TINY = ModelSpec(
    name="vit-tiny", build=build_vit_tiny, train=train_vit_tiny,
    weights=WEIGHTS + ", or a timm-style state_dict file of the same sizes (weights = \"...\")",
    params=(
        Param("patch", int, default=4, min=1, help="patch side (pixels)"),
        Param("image_size", int, default=16, min=0,
              help="resize the input to this square side first (bilinear; 0: as it is)"),
        Param("dim", int, default=64, min=4, help="embedding width"),
        Param("depth", int, default=2, min=1, help="transformer blocks"),
        Param("heads", int, default=4, min=1, help="attention heads (must divide dim)"),
        Param("mlp_ratio", float, default=2.0, min=0.0, min_exclusive=True, help="MLP width / dim"),
    ),
    description="vision transformer (Dosovitskiy et al. 2021), timm parameter names: patch embedding, "
                "class token, pre-norm attention + GELU MLP blocks; 8x8 digits resized to 16x16, 4x4 patches",
)


RESNET18 = ModelSpec(
    name="resnet18", build=build_resnet18,
    weights="seeded initialisation, or a torchvision-compatible state_dict file (weights = \"...\")",
    description="ResNet-18 (He et al. 2016), torchvision parameter names; sized for 3x224x224 inputs "
                "(latency work on synthetic data, or your own weights)",
)


WIDE_MLP = ModelSpec(
    name="wide-mlp", build=build_wide_mlp, train=train_wide_mlp,
    weights="trained for `epochs` on the train split (seeded, cached), or seeded initialisation (epochs=0)",
    params=(Param("width", int, default=4096, min=1, help="units of each hidden layer"),
            Param("depth", int, default=3, min=1, help="hidden Linear+ReLU layers"),
            Param("epochs", int, default=2, min=0, help="training epochs; 0: seeded initialisation")),
    description="flatten -> depth x (Linear(width) -> ReLU) -> Linear(num_classes): matmuls large enough for "
                "sparse and low-bit kernels to show",
)

TORCHVISION_WEIGHTS = "seeded initialisation, or a torchvision state_dict file (weights = \"...\")"

RESNET50 = ModelSpec(
    name="resnet50", build=build_resnet50, weights=TORCHVISION_WEIGHTS,
    description="ResNet-50 v1.5 (He et al. 2016, torchvision's), torchvision parameter names; 25.6M "
                "parameters at 1000 classes",
)

MOBILENET_V2 = ModelSpec(
    name="mobilenet_v2", build=build_mobilenet_v2, weights=TORCHVISION_WEIGHTS,
    description="MobileNetV2 (Sandler et al. 2018), width 1.0, torchvision parameter names; 3.5M "
                "parameters at 1000 classes",
)


@hookimpl
def harness_register_models(register):
    """Register ``mlp``, ``lenet5``, ``resnet-small``, ``wide-mlp``, ``vit-tiny``, ``resnet18``, ``resnet50`` and
    ``mobilenet_v2``."""
    for spec in (MLP, LENET5, RESNET_SMALL, WIDE_MLP, VIT_TINY, RESNET18, RESNET50, MOBILENET_V2):
        register(spec)
