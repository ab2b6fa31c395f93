"""Vision Transformers: global MSA (ViT) and local window MSA (local ViT) from one class.

The two families differ only in the attention window: ``window=None`` lets every token attend to
every other; ``window=w`` restricts attention to non-overlapping ``w × w`` windows of the token
grid (paper Sec. 3, Fig. 7a: locality strengthens the inductive bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from course_lib.models.layers import Attention, AttentionResidual, MlpResidual


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of a ViT or local-window ViT."""

    patch_size: int = 4  # side of a square patch; image_size must be a multiple of it
    dim: int = 192  # token width
    depth: int = 12  # transformer blocks (each = one MSA and one MLP sub-block)
    heads: int = 3  # attention heads (dim must be divisible by heads)
    mlp_ratio: float = 4.0  # hidden width of the MLP relative to dim
    window: int | None = None  # None: global MSA (ViT); w: local w×w window MSA
    pool: str = "cls"  # "cls" (class token, the paper's ViT) or "mean" (global average pooling)
    dropout: float = 0.0  # dropout in attention and MLP
    drop_path: float = 0.0  # stochastic depth rate, growing linearly to this value


class PatchEmbed(nn.Module):
    """Patches, embedded, plus learned position embeddings: ``[B, 3, H, W] -> [B, N, dim]``.

    The position embedding lives here so that this module's output is the paper's depth-0
    feature map (the token grid the transformer blocks receive, class token aside).
    """

    feature_kind = "embed"

    def __init__(self, patch_size: int, dim: int, grid: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid, dim) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        return rearrange(self.proj(x), "b d h w -> b (h w) d") + self.pos_embed


class ViT(nn.Module):
    """A pre-norm Vision Transformer for small images (global or local attention)."""

    def __init__(self, config: ViTConfig, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        c = config
        if image_size % c.patch_size:
            raise ValueError(
                f"image_size={image_size} is not divisible by patch_size={c.patch_size}; "
                f"use an image size that is a multiple of {c.patch_size} or pass patch_size=..."
            )
        grid = image_size // c.patch_size
        if c.window and grid % c.window:
            raise ValueError(
                f"the {grid}×{grid} token grid is not divisible by window={c.window}; valid "
                f"windows for this size: {[w for w in range(1, grid + 1) if grid % w == 0]}"
            )
        if c.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', not {c.pool!r}")
        if c.window and c.pool == "cls":
            raise ValueError("window attention needs pool='mean' (a class token has no window)")
        if c.dim % c.heads:
            raise ValueError(f"dim={c.dim} is not divisible by heads={c.heads}")
        self.config = c
        self.num_prefix_tokens = 1 if c.pool == "cls" else 0
        self.patch_embed = PatchEmbed(c.patch_size, c.dim, grid)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim)) if c.pool == "cls" else None
        sub_blocks = []
        for i in range(c.depth):
            dp = c.drop_path * i / max(c.depth - 1, 1)
            attn = Attention(c.dim, c.heads, window=c.window, dropout=c.dropout)
            sub_blocks += [
                AttentionResidual(c.dim, attn, dp),
                MlpResidual(c.dim, c.mlp_ratio, c.dropout, dp),
            ]
        self.blocks = nn.Sequential(*sub_blocks)
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, num_classes)
        self.num_features = c.dim
        self.apply(_init_weights)

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` to normalised tokens ``[B, prefix + N, dim]``."""
        x = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.norm(self.blocks(x))

    def forward_head(self, x: Tensor) -> Tensor:
        """Class token (or mean of the patch tokens) through the linear classifier."""
        return self.head(x[:, 0] if self.cls_token is not None else x.mean(dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(m: nn.Module) -> None:
    """Truncated-normal linear weights and zero biases, as in the ViT/DeiT recipes."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
