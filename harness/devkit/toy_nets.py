"""The torch module behind the ``toy-cnn`` model (imports torch: loaded only inside ``build``).

The class lives at module level because artifacts are pickled whole (``torch.save(module)``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ToyCNN(nn.Module):
    """One 3x3 convolution (4 channels, same padding), ReLU, then a linear classifier.

    Small enough to build, train and export in well under a second, and holds both layer
    kinds that pruning and quantization methods act on (``Conv2d`` and ``Linear``). On
    ``(1, 8, 8)`` inputs it has 36 + 1024 weights, so a sparsity rounded to whole weights
    lands within 0.1 percentage point of any claimed value.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: int = 4):
        super().__init__()
        if len(input_shape) == 3:
            c, h, w = (int(v) for v in input_shape)
            self.conv: nn.Module = nn.Conv2d(c, channels, 3, padding=1)
            features = channels * h * w
        else:  # flat or other inputs: no convolution, the classifier sees them flattened
            self.conv = nn.Identity()
            features = math.prod(int(v) for v in input_shape)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch."""
        return self.fc(self.relu(self.conv(x)).flatten(1))
