"""The torch modules of the ``vit-tiny`` model plugin: a small vision transformer (Dosovitskiy et al. 2021,
An Image is Worth 16x16 Words) with timm's parameter names.

Patch embedding (a strided convolution), a class token and learned position embeddings, pre-norm
blocks of multi-head self-attention and a GELU MLP, a final LayerNorm and a linear head on the class
token. The names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``,
``pos_embed``, ``blocks.N.norm1``, ``blocks.N.attn.qkv``, ``blocks.N.attn.proj``, ``blocks.N.norm2``,
``blocks.N.mlp.fc1``, ``blocks.N.mlp.fc2``, ``norm``, ``head``), so a timm ``state_dict`` of the same
sizes loads with ``weights = "file"``. Every matrix product is an ``nn.Linear`` (the attention's
``qkv`` and ``proj`` too), so the weight methods see all of them; the attention's softmax is an
``nn.Softmax`` module, so a method can find it (LRP treats it as a constant, see
:mod:`harness_plugins.lrp`).

Imports torch at the top: the plugin module imports this one inside ``build`` only. The classes live
at module level because artifacts are pickled whole.
"""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """``a + b`` as a module (the residual and position-embedding sums), so relevance methods see it.

    ``lrp_linear`` declares it parameter-free and linear in its inputs: LRP's epsilon rule on it splits
    relevance between the two summands in proportion to their values (the z-rule for a sum) instead of
    copying it to both, as the gradient through a bare ``+`` would."""

    lrp_linear = True

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The sum."""
        return a + b


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch`` x ``patch`` patches, each projected to ``dim`` by a strided convolution."""

    def __init__(self, channels: int, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` to ``(N, tokens, dim)``."""
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection and an output ``proj`` (timm's layout)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"vit-tiny: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, T, dim)`` to ``(N, T, dim)``."""
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = self.softmax((q * self.scale) @ k.transpose(-2, -1))
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, d))


class Mlp(nn.Module):
    """``fc1`` -> GELU -> ``fc2``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP applied to every token."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.add1 = Add()
        self.add2 = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One block."""
        x = self.add1(x, self.attn(self.norm1(x)))
        return self.add2(x, self.mlp(self.norm2(x)))


class ViT(nn.Module):
    """A vision transformer for ``(C, H, W)`` inputs.

    ``image_size`` > 0 first resizes the input to ``image_size`` x ``image_size`` (bilinear, an ONNX
    ``Resize``), so 8x8 digits meet 4x4 patches at 16x16; 0 takes the input as it is. The resized
    side must be divisible by ``patch``.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, patch: int = 4, image_size: int = 16,
                 dim: int = 64, depth: int = 2, heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"vit-tiny needs image inputs shaped (C, H, W), got input_shape {tuple(input_shape)}")
        c, h, w = (int(v) for v in input_shape)
        side_h, side_w = (image_size, image_size) if image_size else (h, w)
        if side_h % patch or side_w % patch:
            raise ValueError(f"vit-tiny: the image side ({side_h}x{side_w}) must be divisible by patch {patch}")
        self.image_size = int(image_size)
        tokens = (side_h // patch) * (side_w // patch)
        self.patch_embed = PatchEmbed(c, patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.add_pos = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch shaped ``(N, C, H, W)``."""
        if self.image_size:
            x = nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                          align_corners=False)
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = self.add_pos(torch.cat((cls, tokens), dim=1), self.pos_embed)
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])
