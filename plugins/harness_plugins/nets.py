"""The torch modules behind the model plugins.

This module imports torch at the top, so the plugin modules import it only inside
``build``. The classes live at module level because artifacts are pickled whole
(``torch.save(module)``): unpickling needs ``harness_plugins.nets.<Class>`` to be importable.

No model uses BatchNorm: plain conv/linear + ReLU graphs export to ONNX and quantize
without folding steps, and pruning acts directly on the weights that run.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _check_image_shape(name: str, input_shape: tuple[int, ...], multiple: int) -> tuple[int, int, int]:
    """Return ``(C, H, W)`` or raise ValueError when the shape does not suit an image model."""
    if len(input_shape) != 3:
        raise ValueError(f"{name} needs image inputs shaped (C, H, W), got input_shape {tuple(input_shape)}")
    c, h, w = (int(v) for v in input_shape)
    if min(c, h, w) < 1 or h % multiple or w % multiple:
        raise ValueError(f"{name} needs H and W divisible by {multiple}, "
                         f"got input_shape {tuple(input_shape)}")
    return c, h, w


class MLP(nn.Module):
    """Flatten, one hidden ReLU layer of ``hidden`` units, then a linear classifier."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64):
        super().__init__()
        features = math.prod(int(v) for v in input_shape)
        self.fc1 = nn.Linear(features, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of inputs of any per-sample shape."""
        # flatten(1) keeps the batch dimension symbolic in the ONNX export.
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


class LeNet5(nn.Module):
    """LeNet-5 with 3x3 'same' convolutions, for small images whose H and W are divisible by 4.

    Conv(C,6) ReLU MaxPool2 -> Conv(6,16) ReLU MaxPool2 -> Linear(16*H/4*W/4, 120) ReLU
    -> Linear(120, 84) ReLU -> Linear(84, num_classes).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        c, h, w = _check_image_shape("lenet5", input_shape, 4)
        self.features = nn.Sequential(
            nn.Conv2d(c, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * (h // 4) * (w // 4), 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch shaped ``(N, C, H, W)``."""
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    """A residual block without normalisation: ``relu(conv2(relu(conv1(x))) + shortcut(x))``.

    The shortcut is the identity, or a strided 1x1 convolution when the block changes
    the resolution or the channel count.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut: nn.Module = (nn.Identity() if stride == 1 and in_ch == out_ch
                                    else nn.Conv2d(in_ch, out_ch, 1, stride=stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output."""
        return self.relu(self.conv2(self.relu(self.conv1(x))) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """A small residual CNN: 3x3 stem to 16 channels, two basic blocks (16, then 32 at stride 2),
    global average pooling and a linear classifier. Works for any image size.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 16):
        super().__init__()
        c, _, _ = _check_image_shape("resnet-small", input_shape, 1)
        self.stem = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU())
        self.block1 = BasicBlock(width, width)
        self.block2 = BasicBlock(width, 2 * width, stride=2)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch shaped ``(N, C, H, W)``."""
        x = self.block2(self.block1(self.stem(x)))
        # A mean over H and W exports as one ReduceMean, whatever the input size.
        return self.fc(x.mean(dim=(2, 3)))
