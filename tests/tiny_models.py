"""Tiny models tagged with ``feature_kind``, for testing the feature-map analyses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class Stem(nn.Sequential):
    feature_kind = "stem"


class ConvBlock(nn.Module):
    feature_kind = "conv"

    def __init__(self, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, stride=stride, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x[..., :: self.stride, :: self.stride]
        return shortcut + self.conv(F.relu(self.bn(x)))


class TinyConvNet(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.stem = Stem(nn.Conv2d(3, width, 3, padding=1))
        self.blocks = nn.Sequential(ConvBlock(width), ConvBlock(width, stride=2))
        self.head = nn.Linear(width, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class Embed(nn.Module):
    feature_kind = "embed"

    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        tokens = rearrange(self.proj(x), "b d h w -> b (h w) d")
        return torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)  # (B, 1+N, D)


class Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, 1, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class Residual(nn.Module):
    def __init__(self, fn: nn.Module, dim: int, kind: str) -> None:
        super().__init__()
        self.norm, self.fn, self.feature_kind = nn.LayerNorm(dim), fn, kind

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fn(self.norm(x))


class TinyViT(nn.Module):
    num_prefix_tokens = 1

    def __init__(self, dim: int = 8, patch: int = 2, depth: int = 2) -> None:
        super().__init__()
        self.embed = Embed(dim, patch)
        mlp = lambda: nn.Sequential(nn.Linear(dim, dim), nn.GELU())  # noqa: E731
        self.blocks = nn.Sequential(
            *[
                block
                for _ in range(depth)
                for block in (Residual(Attention(dim), dim, "msa"), Residual(mlp(), dim, "mlp"))
            ]
        )
        self.head = nn.Linear(dim, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.embed(x))[:, 0])
