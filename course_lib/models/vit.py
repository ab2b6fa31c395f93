"""Vision Transformers: global MSA (ViT) and local MSA (local ViT) from one class.

The two families differ only in what a token attends to: by default every token attends to every
other (global MSA); ``neighbourhood=k`` restricts each token to the ``k × k`` tokens around it on
the token grid (neighbourhood attention, the local MSA of the paper's Fig. 7a: locality
strengthens the inductive bias). Neighbourhoods overlap, so information spreads over the grid
with depth. ``window=w`` (non-overlapping ``w × w`` windows, no shift) is kept as an option, but
windows never exchange information: on an 8×8 grid with 4×4 windows a stack of such blocks is
four separate quadrant models joined only at the pooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from course_lib.analysis.features import FeatureMap
from course_lib.models.layers import Attention, Block, check_output_fmt, take_indices


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of a ViT or local-window ViT."""

    patch_size: int = 4  # side of a square patch; image_size must be a multiple of it
    dim: int = 192  # token width
    depth: int = 12  # transformer blocks (each = one MSA and one MLP sub-block)
    heads: int = 3  # attention heads (dim must be divisible by heads)
    mlp_ratio: float = 4.0  # hidden width of the MLP relative to dim
    window: int | None = None  # w: non-overlapping w×w windows (no shift: windows never connect)
    neighbourhood: int | None = None  # k: each token attends to the k×k tokens around it
    pool: str = "cls"  # "cls" (class token, the paper's ViT) or "mean" (global average pooling)
    dropout: float = 0.0  # dropout in attention and MLP
    drop_path: float = 0.0  # stochastic depth rate, growing linearly to this value


class PatchEmbed(nn.Module):
    """Non-overlapping patches, linearly embedded: ``[B, 3, H, W] -> [B, N, dim]`` (row-major)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return rearrange(self.proj(x), "b d h w -> b (h w) d")


class ViT(nn.Module):
    """A pre-norm Vision Transformer for small images (global or local attention).

    ``blocks`` holds ``depth`` transformer :class:`~course_lib.models.layers.Block` s, each an MSA
    sub-block (``block.msa``) followed by an MLP sub-block (``block.mlp``).
    """

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
        if c.window and c.neighbourhood:
            raise ValueError("choose window or neighbourhood attention, not both")
        if c.neighbourhood is not None and not 1 <= c.neighbourhood <= grid:
            raise ValueError(
                f"neighbourhood={c.neighbourhood} does not fit the {grid}×{grid} token grid; "
                f"choose a kernel from 1 to {grid}"
            )
        if (c.window or c.neighbourhood) and c.pool == "cls":
            raise ValueError(
                "local (window or neighbourhood) attention needs pool='mean' (a class token has "
                "no place on the token grid)"
            )
        if c.dim % c.heads:
            raise ValueError(f"dim={c.dim} is not divisible by heads={c.heads}")
        self.config = c
        self.grid_size = (grid, grid)
        self.num_prefix_tokens = 1 if c.pool == "cls" else 0
        # Parameter order (own parameters first, then submodules): cls_token, pos_embed, the
        # patch projection, the blocks; the random draws happen in creation order (projection
        # first). Every analysis that walks model.parameters() (Hessian start vectors, landscape
        # directions) depends on the order, so it is kept.
        self.patch_embed = PatchEmbed(c.patch_size, c.dim)
        if c.pool == "cls":
            # As the official ViT: a trunc-normal(0.02) class token with a position embedding
            # of its own (row 0 of pos_embed). A zero token, tiny next to the patch tokens, is
            # blown up by the first LayerNorm and makes the Hessian ≈ 4× sharper at init.
            self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        else:
            self.cls_token = None
        n_pos = self.num_prefix_tokens + grid * grid  # prefix tokens first, then the grid
        self.pos_embed = nn.Parameter(torch.randn(1, n_pos, c.dim) * 0.02)
        blocks = []
        for i in range(c.depth):
            dp = c.drop_path * i / max(c.depth - 1, 1)
            attn = Attention(
                c.dim,
                c.heads,
                window=c.window,
                dropout=c.dropout,
                neighbourhood=c.neighbourhood,
                grid=grid,
            )
            blocks.append(Block(c.dim, attn, c.mlp_ratio, c.dropout, dp))
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, num_classes)
        self.num_features = c.dim
        self.apply(_init_weights)
        self.register_load_state_dict_pre_hook(_refuse_old_layout)

    def _embed(self, x: Tensor) -> Tensor:
        """Patch tokens plus position embeddings, ``[B, N, dim]`` (the paper's depth 0)."""
        return self.patch_embed(x) + self.pos_embed[:, self.num_prefix_tokens :]

    def _prepend_prefix(self, x: Tensor) -> Tensor:
        """The class token plus its position embedding in front: ``[B, prefix + N, dim]``."""
        if self.cls_token is None:
            return x
        cls = self.cls_token + self.pos_embed[:, : self.num_prefix_tokens]  # (1, 1, dim)
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` to normalised tokens ``[B, prefix + N, dim]``."""
        return self.norm(self.blocks(self._prepend_prefix(self._embed(x))))

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        output_fmt: str = "NCHW",
    ) -> list[FeatureMap]:
        """The paper's feature maps (Fig. 8, 9), in forward order: ``1 + 2 * depth`` of them.

        Depth 0 is the patch embedding with the position embedding added (``name="patch_embed"``,
        ``kind="embed"``); then, per transformer block ``i``, the residual stream after its MSA
        sub-block (``"blocks.i.msa"``, kind ``"msa"``) and after its MLP sub-block
        (``"blocks.i.mlp"``, kind ``"mlp"``). Returns one
        :class:`~course_lib.analysis.features.FeatureMap` per selected depth.

        ``output_fmt="NCHW"``: the ``num_prefix_tokens`` leading (class) tokens are dropped and
        the patch tokens laid out on their grid, ``[B, dim, H/p, W/p]``; ``"NLC"``: the residual
        stream as it is, ``[B, prefix + N, dim]`` (depth 0 has no prefix tokens yet). ``indices``
        selects depths as in timm: ``None`` all, ``k`` the last ``k``, or a list. Runs in the
        model's current mode and grad setting; the last map, prefix tokens kept and passed
        through ``norm``, is :meth:`forward_features`. Tensors are not detached or copied.
        """
        check_output_fmt(output_fmt)
        n = 1 + 2 * len(self.blocks)
        chosen = set(take_indices(n, indices))
        h, w = self.grid_size

        def layout(tokens: Tensor, prefix: int) -> Tensor:
            if output_fmt == "NLC":
                return tokens
            return rearrange(tokens[:, prefix:], "b (h w) d -> b d h w", h=h, w=w)

        maps = []
        x = self._embed(x)
        if 0 in chosen:
            maps.append(FeatureMap("patch_embed", "embed", layout(x, 0)))
        x = self._prepend_prefix(x)
        for i, block in enumerate(self.blocks):
            if 2 * i + 1 > max(chosen):
                break
            for j, sub in enumerate((block.msa, block.mlp)):
                x = sub(x)
                if 2 * i + 1 + j in chosen:
                    name = f"blocks.{i}.{'msa' if j == 0 else 'mlp'}"
                    maps.append(
                        FeatureMap(name, sub.feature_kind, layout(x, self.num_prefix_tokens))
                    )
        return maps

    def forward_head(self, x: Tensor) -> Tensor:
        """Class token (or mean of the patch tokens) through the linear classifier."""
        return self.head(x[:, 0] if self.cls_token is not None else x.mean(dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _refuse_old_layout(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """Refuse, with the fix, a state dict of an older ViT layout.

    Two old layouts: the position embedding inside ``patch_embed``, and a class token without a
    position embedding of its own (``pos_embed`` one row short).
    """
    fix = (
        "it cannot be loaded into the current ViT. Retrain it (cached runs retrain by themselves) "
        "or use the version of course_lib that wrote it"
    )
    if f"{prefix}patch_embed.pos_embed" in state_dict:
        raise ValueError(
            "this ViT checkpoint has the old layout (position embedding inside patch_embed, "
            f"sub-blocks as blocks.0, blocks.1, ...); {fix}"
        )
    pos = state_dict.get(f"{prefix}pos_embed")
    if module.cls_token is not None and pos is not None:
        if pos.shape[1] == module.pos_embed.shape[1] - 1:
            raise ValueError(
                "this ViT checkpoint has the old layout (a class token without a position "
                f"embedding: pos_embed has {pos.shape[1]} rows, not {module.pos_embed.shape[1]}); "
                f"{fix}"
            )


def _init_weights(m: nn.Module) -> None:
    """Truncated-normal linear weights and zero biases, as in the ViT/DeiT recipes."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
