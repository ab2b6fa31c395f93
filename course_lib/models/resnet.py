"""Pre-activation ResNets with a CIFAR stem, and AlterNet as the same network with MSA blocks.

AlterNet (paper Sec. 4) *is* a ResNet in which the last blocks of some stages are replaced by
MSA blocks, so both families are built by one class: ``msa_blocks=(0, 0, 0, 0)`` gives the
ResNet, ``msa_blocks=(0, 1, 1, 2)`` the paper's CIFAR AlterNet-50. ``preact=False`` gives the
original post-activation ResNet (:mod:`course_lib.models.post_activation`), which chapter 03
analyses because the paper's Fourier and variance figures do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from einops import rearrange
from torch import Tensor, nn

from course_lib.analysis.features import FeatureMap
from course_lib.models.layers import (
    MSABlock,
    PreActBlock,
    PreActBottleneck,
    check_output_fmt,
    take_indices,
)
from course_lib.models.post_activation import PostActBlock, PostActBottleneck


@dataclass(frozen=True)
class ResNetConfig:
    """Architecture of a (pre-activation) ResNet or AlterNet."""

    block: str = "basic"  # "basic" (two 3×3 convs) or "bottleneck" (1×1, 3×3, 1×1, expansion 4)
    widths: tuple[int, ...] = (64, 128, 256, 512)  # inner width of each stage
    depths: tuple[int, ...] = (2, 2, 2, 2)  # blocks per stage (MSA blocks included)
    stem_width: int = 64  # channels of the 3×3 CIFAR stem (no pooling: 32×32 stays 32×32)
    msa_blocks: tuple[int, ...] = (0, 0, 0, 0)  # MSA blocks at the end of each stage (AlterNet)
    heads: tuple[int, ...] = (3, 6, 12, 24)  # attention heads of the MSA blocks, per stage
    head_dim: int = 64  # width of one attention head
    window: int = 4  # side of the local attention window (tokens = pixels of the feature map)
    drop_path: float = 0.0  # stochastic depth rate, growing linearly to this value
    # pre-activation blocks (He et al. 2016b, the course's default and AlterNet's) or the
    # original post-activation ones (2016a; the paper's Fig. 8 and 9 ResNets, see post_activation)
    preact: bool = True

    def stage_sides(self, image_size: int) -> tuple[int, ...]:
        """Side of each stage's feature maps for ``image_size`` inputs: the first stage keeps
        the stem's resolution, each later one halves it with a stride-2 block (rounding up, as
        a padded 3×3 or a 1×1 convolution of stride 2 does): ``(32, 16, 8)`` for 32 and 3 stages.
        """
        sides = [image_size]
        for _ in self.depths[1:]:
            sides.append((sides[-1] + 1) // 2)
        return tuple(sides)


class Stem(nn.Module):
    """CIFAR-style stem: one 3×3 convolution at full resolution (its output is depth 0),
    followed by BN and ReLU in a post-activation ResNet (whose blocks expect activated input)."""

    feature_kind = "stem"

    def __init__(self, width: int, post_activation: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.post = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU()) if post_activation else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x if self.post is None else self.post(x)


def msa_positions(depth: int, n_msa: int) -> list[bool]:
    """Which blocks of a stage are MSA: counted from the stage's end, alternating with convs.

    ``msa_positions(4, 2) -> [False, True, False, True]`` (the paper's CIFAR stage 4: Conv, MSA,
    Conv, MSA); ``msa_positions(3, 1) -> [False, False, True]``.
    """
    if n_msa > (depth + 1) // 2:
        raise ValueError(f"a stage of {depth} blocks holds at most {(depth + 1) // 2} MSA blocks")
    flags = [False] * depth
    for j in range(n_msa):
        flags[depth - 1 - 2 * j] = True
    return flags


class ResNet(nn.Module):
    """ResNet / AlterNet for small images: stem, stages, (pre-activation: BN-ReLU), pooling,
    linear."""

    def __init__(self, config: ResNetConfig, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        c = config
        n_stages = len(c.depths)
        if not (len(c.widths) == len(c.msa_blocks) == len(c.heads) == n_stages):
            raise ValueError("widths, depths, msa_blocks and heads need one entry per stage")
        blocks_of = {
            True: {"basic": PreActBlock, "bottleneck": PreActBottleneck},
            False: {"basic": PostActBlock, "bottleneck": PostActBottleneck},
        }
        block_cls = blocks_of[c.preact].get(c.block)
        if block_cls is None:
            raise ValueError(f"block must be 'basic' or 'bottleneck', not {c.block!r}")
        if not c.preact and any(c.msa_blocks):
            raise ValueError(
                "MSA blocks are pre-activation blocks: an AlterNet needs preact=True "
                f"(got msa_blocks={c.msa_blocks} with preact=False)"
            )
        self.config = c
        self.stem = Stem(c.stem_width, post_activation=not c.preact)
        total, done = sum(c.depths), 0
        stages, in_ch = [], c.stem_width
        stage_specs = zip(c.widths, c.depths, c.msa_blocks, c.stage_sides(image_size), strict=True)
        for s, (width, depth, n_msa, side) in enumerate(stage_specs):
            stride = 1 if s == 0 else 2
            if n_msa and side % c.window:
                raise ValueError(
                    f"stage {s + 1} has a {side}×{side} feature map, not divisible by the "
                    f"attention window {c.window}; choose image_size so that every stage with MSA "
                    f"blocks is a multiple of the window (e.g. 32 or 64), or pass window=..."
                )
            blocks = []
            for i, is_msa in enumerate(msa_positions(depth, n_msa)):
                dp = c.drop_path * done / max(total - 1, 1)
                st = stride if i == 0 else 1
                out_ch = width * block_cls.expansion
                if is_msa:
                    blk = MSABlock(in_ch, out_ch, c.heads[s], c.window, st, c.head_dim, dp)
                else:
                    blk = block_cls(in_ch, width, st, dp)
                blocks.append(blk)
                in_ch, done = out_ch, done + 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # a pre-activation network ends on a residual sum: normalise and activate it once more;
        # a post-activation block's output already is
        self.norm = nn.BatchNorm2d(in_ch) if c.preact else nn.Identity()
        self.act = nn.ReLU() if c.preact else nn.Identity()
        self.head = nn.Linear(in_ch, num_classes)
        self.num_features = in_ch
        self.num_prefix_tokens = 0  # feature maps, no tokens

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        output_fmt: str = "NCHW",
    ) -> list[FeatureMap]:
        """The paper's feature maps (Fig. 8, 9), in forward order: the stem, then every block.

        Returns one :class:`~course_lib.analysis.features.FeatureMap` per depth: ``name`` is the
        module's name (``"stem"``, ``"stages.1.0"``, ...), ``kind`` is ``"stem"``, ``"conv"`` or
        ``"msa"`` (AlterNet's MSA blocks), ``tensor`` is ``[B, C, H, W]`` (``output_fmt="NCHW"``)
        or ``[B, H*W, C]`` (``"NLC"``, row-major). ``indices`` selects depths as in timm:
        ``None`` all, ``k`` the last ``k``, or a list. Runs in the model's current mode and with
        gradients as the caller set them; the last map, through ``norm`` and ``act``, is
        :meth:`forward_features`. Tensors are the graph's own (not detached or copied).
        """
        check_output_fmt(output_fmt)
        blocks = [block for stage in self.stages for block in stage]
        chosen = set(take_indices(1 + len(blocks), indices))
        names = ["stem"] + [
            f"stages.{s}.{i}" for s, stage in enumerate(self.stages) for i in range(len(stage))
        ]
        maps = []
        for i, module in enumerate([self.stem, *blocks][: max(chosen) + 1]):
            x = module(x)
            if i in chosen:
                out = x if output_fmt == "NCHW" else rearrange(x, "b c h w -> b (h w) c")
                maps.append(FeatureMap(names[i], module.feature_kind, out))
        return maps

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` to the last feature map ``[B, C, H/8, W/8]`` (4 stages)."""
        return self.act(self.norm(self.stages(self.stem(x))))

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pooling and the linear classifier: ``[B, C, h, w] -> [B, classes]``."""
        return self.head(x.mean(dim=(2, 3)))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
