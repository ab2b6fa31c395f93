"""Model registry: ``create_model(name, num_classes, image_size, **overrides)``, ``list_models()``.

Four families (paper Sec. 3-4): ``resnet`` (pre-activation ResNet, CIFAR stem; ``resnet_post_*``
and ``resnet50_post`` are post-activation, for chapter 03, whose paper figures read such
ResNets), ``vit`` (global MSA), ``local_vit`` (k×k neighbourhood MSA, mean pooling) and
``alternet`` (a ResNet whose stage-final blocks are MSA blocks). Sizes: ``*_tiny`` for tests
and the smoke profile, ``*_mini`` for the laptop profile, and paper-like sizes (``resnet18``,
``resnet50``, ``vit_ti``, ``vit_s``, ``local_vit_ti``, ``alternet50``) for GPUs.

The ``*_tiny`` and ``*_mini`` families are matched in size at 32×32 images and 10 classes: every
model has within ±25 % of its ResNet's parameters (tested), and each AlterNet is its ResNet
with the last block of some stages replaced by an MSA block as large as the conv block it
replaces, so a comparison between families is not a comparison of capacities.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass

from torch import nn

from course_lib.models.resnet import ResNet, ResNetConfig
from course_lib.models.vit import ViT, ViTConfig

__all__ = [
    "POSITION_PARAMETERS",
    "ResNet",
    "ResNetConfig",
    "ViT",
    "ViTConfig",
    "create_model",
    "list_models",
    "model_family",
]


#: Name endings of the parameters that encode position (class token, position embeddings,
#: relative-position bias tables): no weight decay on them, as in DeiT and Swin.
POSITION_PARAMETERS: tuple[str, ...] = ("cls_token", "pos_embed", "bias.table")


@dataclass(frozen=True)
class _Entry:
    family: str
    config: ResNetConfig | ViTConfig


# The small ResNets and AlterNets. MSA blocks: heads (1, 2, 4) of width 64 (the paper's head
# width, more heads in later stages as its build-up rule says), so that an MSA block has about
# the parameters of the basic conv block it replaces (stage 2: 18.1k vs 18.6k; stage 3: 70.9k
# vs 74.0k): AlterNet's gains cannot come from extra capacity. ResNets ignore the two fields,
# but a ResNet built with msa_blocks=... (the build-up study) gets these MSA blocks.
_SMALL = dict(widths=(16, 32, 64), stem_width=16, heads=(1, 2, 4), head_dim=64)

# The small ViTs: 8×8 tokens of 4×4-px patches at 32×32. The local ViTs use 3×3 neighbourhood
# attention (the paper's Fig. 7a has 3×3 and 5×5 kernels at patch 4, i.e. on this 8×8 grid):
# with 3×3 the receptive field grows 3, 5, 7, 9 tokens wide over the four blocks of the mini
# model, so it stays local until the last block, whereas 5×5 would cover the whole grid after
# two blocks (5, 9) and leave little locality to compare with the global ViT. Mean pooling:
# a class token has no place on the grid. Laptop ViTs: width 64, 4 blocks, 2 heads, MLP ratio
# 3, which matches resnet_mini's parameters (175k); the earlier width 96, depth 6 model had
# 3.9× the ResNet's parameters and took longer per batch.
_VIT_TINY = dict(patch_size=4, dim=64, depth=2, heads=2, mlp_ratio=2.0)
_VIT_MINI = dict(patch_size=4, dim=64, depth=4, heads=2, mlp_ratio=3.0)

_REGISTRY: dict[str, _Entry] = {
    # smoke sizes: an epoch of the synthetic data in seconds on a CPU
    "resnet_tiny": _Entry("resnet", ResNetConfig(depths=(1, 1, 1), msa_blocks=(0, 0, 0), **_SMALL)),
    "resnet_post_tiny": _Entry(
        "resnet", ResNetConfig(depths=(1, 1, 1), msa_blocks=(0, 0, 0), preact=False, **_SMALL)
    ),
    # alternet_tiny: resnet_tiny plus an MSA block (narrow heads) at the end of stage 3, not in
    # place of its only block, which downsamples (an MSA block's 1×1 stride-2 projection would
    # drop 3/4 of the pixels). Smoke sizes are for running the book, not for comparing.
    "alternet_tiny": _Entry(
        "alternet",
        ResNetConfig(depths=(1, 1, 2), msa_blocks=(0, 0, 1), **{**_SMALL, "head_dim": 16}),
    ),
    "vit_tiny": _Entry("vit", ViTConfig(**_VIT_TINY)),
    "local_vit_tiny": _Entry("local_vit", ViTConfig(**_VIT_TINY, neighbourhood=3, pool="mean")),
    # laptop sizes: minutes of training on 2 CPU cores
    "resnet_mini": _Entry("resnet", ResNetConfig(depths=(2, 2, 2), msa_blocks=(0, 0, 0), **_SMALL)),
    "resnet_post_mini": _Entry(
        "resnet", ResNetConfig(depths=(2, 2, 2), msa_blocks=(0, 0, 0), preact=False, **_SMALL)
    ),
    "alternet_mini": _Entry(
        "alternet", ResNetConfig(depths=(2, 2, 2), msa_blocks=(0, 1, 1), **_SMALL)
    ),
    "vit_mini": _Entry("vit", ViTConfig(**_VIT_MINI)),
    "local_vit_mini": _Entry("local_vit", ViTConfig(**_VIT_MINI, neighbourhood=3, pool="mean")),
    # paper-like sizes (CIFAR variants of the paper's models)
    "resnet18": _Entry("resnet", ResNetConfig(block="basic", depths=(2, 2, 2, 2))),
    "resnet50": _Entry("resnet", ResNetConfig(block="bottleneck", depths=(3, 4, 6, 3))),
    # the official CIFAR ResNet-50 of the paper's Fig. 9: post-activation, 3×3 stem with BN-ReLU
    "resnet50_post": _Entry(
        "resnet", ResNetConfig(block="bottleneck", depths=(3, 4, 6, 3), preact=False)
    ),
    "alternet50": _Entry(
        "alternet",
        ResNetConfig(
            block="bottleneck", depths=(3, 4, 6, 4), msa_blocks=(0, 1, 1, 2), drop_path=0.1
        ),
    ),
    "vit_ti": _Entry("vit", ViTConfig(patch_size=2, dim=192, depth=12, heads=3, drop_path=0.1)),
    "vit_s": _Entry("vit", ViTConfig(patch_size=2, dim=384, depth=12, heads=6, drop_path=0.1)),
    # vit_ti with 5×5 neighbourhood attention (paper Fig. 7a: the 5×5 kernel gave the lowest
    # train NLL and the fewest negative Hessian eigenvalues). Patch 2 as vit_ti, so the two
    # differ only in locality: on the 16×16 grid the receptive field is 5, 9, 13, 17 tokens wide
    # after 1-4 blocks (the whole grid from block 4 on, of 12).
    "local_vit_ti": _Entry(
        "local_vit",
        ViTConfig(
            patch_size=2, dim=192, depth=12, heads=3, neighbourhood=5, pool="mean", drop_path=0.1
        ),
    ),
}


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (e.g. ``"*_tiny"``), sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_family(name: str) -> str:
    """The family of a registered model: ``resnet``, ``vit``, ``local_vit`` or ``alternet``."""
    return _lookup(name).family


def _lookup(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int = 10, image_size: int = 32, **overrides) -> nn.Module:
    """Build a registered model, optionally overriding fields of its config.

    Example: ``create_model("vit_ti", num_classes=100, patch_size=4)``. Raises ``ValueError``
    for unknown names or fields, ``num_classes < 1`` and image sizes the architecture cannot
    take (not divisible by the patch or window size).
    """
    entry = _lookup(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    fields = {f.name for f in dataclasses.fields(entry.config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {name}; valid: {sorted(fields)}")
    config = dataclasses.replace(entry.config, **overrides)
    cls = ViT if isinstance(config, ViTConfig) else ResNet
    return cls(config, num_classes=num_classes, image_size=image_size)
