"""Post-activation residual blocks (He et al. 2016a): the original ResNet's ``ReLU(skip + branch)``.

The course's ResNets are pre-activation (He et al. 2016b), like the paper's AlterNet and the
ResNet its build-up starts from. The paper's Fourier and variance figures (Fig. 8, 9) read
post-activation ResNet-50s instead (timm's ImageNet model and the official CIFAR model), so
every map they measure has passed the ReLU after the residual sum. ``ResNetConfig(preact=False)``
builds a ResNet from these blocks, for chapter 03.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.models.layers import DropPath


def _bn_shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1×1 convolution and BN (the original ResNet's
    projection shortcut, on the block's input)."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
    )


class PostActResidual(nn.Module):
    """``ReLU(shortcut(x) + drop_path(branch(x)))``: the post-activation residual pattern.

    Subclasses set ``shortcut``, ``drop_path`` and :meth:`branch` (which ends in a BN)."""

    feature_kind = "conv"

    def branch(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.shortcut(x) + self.drop_path(self.branch(x)))


class PostActBlock(PostActResidual):
    """Basic block: conv3×3-BN-ReLU, conv3×3-BN, then the sum with the shortcut and a ReLU."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1, drop_path: float = 0.0) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = _bn_shortcut(in_ch, out_ch, stride)
        self.drop_path = DropPath(drop_path)

    def branch(self, x: Tensor) -> Tensor:
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))


class PostActBottleneck(PostActResidual):
    """Bottleneck block: conv1×1-BN-ReLU, conv3×3-BN-ReLU, conv1×1-BN (×4), sum, ReLU."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, drop_path: float = 0.0) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = _bn_shortcut(in_ch, out_ch, stride)
        self.drop_path = DropPath(drop_path)

    def branch(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return self.bn3(self.conv3(out))


__all__ = ["PostActBlock", "PostActBottleneck", "PostActResidual"]
