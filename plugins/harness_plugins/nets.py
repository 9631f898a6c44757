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


class TVBasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, with its parameter names (conv1, bn1, conv2, bn2, downsample)."""

    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) with torchvision's module names, so a torchvision ``state_dict``
    file loads into it; the stem takes any channel count."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        channels = input_shape[0]
        self.conv1 = nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, in_ch = [], 64
        for i, width in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(TVBasicBlock(in_ch, width, stride), TVBasicBlock(width, width)))
            in_ch = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TVBottleneck(nn.Module):
    """torchvision's ResNet Bottleneck (v1.5: stride on the 3x3), with its parameter names."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet50(nn.Module):
    """ResNet-50 (He et al. 2016; torchvision's v1.5) with torchvision's module names, so a
    torchvision ``state_dict`` file loads into it; the stem takes any channel count."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, in_ch = [], 64
        for i, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
            stride = 1 if i == 0 else 2
            stage = [TVBottleneck(in_ch, width, stride)]
            in_ch = width * TVBottleneck.expansion
            stage += [TVBottleneck(in_ch, width) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * TVBottleneck.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _conv_bn_relu6(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias), BatchNorm, ReLU6 as children 0, 1, 2."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block with torchvision's names: ``conv`` = [expand 1x1], depthwise 3x3, project 1x1, BN."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int):
        super().__init__()
        hidden = in_ch * expand
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu6(in_ch, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018), width 1.0, with torchvision's module names
    (``features.N...``, ``classifier.1``); the stem takes any channel count."""

    #: (expansion t, channels c, repeats n, first stride s), from the paper's Table 2.
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        features: list[nn.Module] = [_conv_bn_relu6(input_shape[0], 32, 3, 2)]
        in_ch = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        features.append(_conv_bn_relu6(in_ch, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.classifier(x)
