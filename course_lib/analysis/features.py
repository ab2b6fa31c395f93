"""Feature maps of every block in one forward pass, shared by the Fourier and variance analyses.

A "feature map" in the paper's sense (Park & Kim 2022, Sec. 3, Fig. 2a, 8, 9) is the output of a
block: the ResNet stem and each residual block; a ViT's patch embedding and, per transformer
block, the residual stream after ``x + attn(norm(x))`` ("msa") and after ``x + mlp(norm(x))``
("mlp") as two separate depths.

Where the maps come from, in order of preference:

1. the model's own ``forward_intermediates(x)`` returning a list of :class:`FeatureMap` (our
   models, :mod:`course_lib.models`): names, kinds and the layout ``[B, C, H, W]`` come from the
   model, class tokens are dropped by the model itself (no guessing from shapes);
2. timm models with timm's ``forward_intermediates`` (ResNet, ConvNeXt, ViT/DeiT, Swin,
   EfficientNet, ...): timm returns ``[B, C, H, W]`` itself, dropping prefix tokens by the
   model's ``num_prefix_tokens`` and permuting NHWC stages (Swin, ConvNeXt-style); names come
   from ``model.feature_info``. timm's depths are its own: every block of a ViT, every *stage*
   of a hierarchical model;
3. torchvision ResNets and ViTs by ``torchvision.models.feature_extraction`` (FX), see
   :func:`torchvision_feature_maps`;
4. forward hooks on modules: those the caller names (``modules=``), else modules tagged with a
   string attribute ``feature_kind``, else known third-party block classes. Token maps
   ``[B, N, D]`` are laid on their grid later by :func:`to_grid`, given the model's
   ``num_prefix_tokens``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from course_lib.analysis.batches import require_finite, to_device
from course_lib.analysis.evaluation import eval_mode, model_device

ModuleSpec = Sequence[tuple[str, nn.Module, str]] | Mapping[str, nn.Module]
"""Explicit choice of modules: ``[(name, module, kind), ...]`` or ``{name: module}`` (the kind is
then the module's ``feature_kind``, or ``"block"``)."""


@dataclass(frozen=True)
class FeatureMap:
    """The output of one block, detached: ``[B, C, H, W]`` or tokens ``[B, N, D]``."""

    name: str  # the module's name in model.named_modules() (or the name the caller gave)
    kind: str  # "stem", "embed", "conv", "msa", "mlp"; "block" for untagged third-party blocks
    tensor: Tensor


def normalized_depth(n: int) -> Tensor:
    """Depths ``i / (n - 1)``, ``i = 0 … n-1``: the x-axis of paper Fig. 8, 9 (``[0.]`` if n=1)."""
    return torch.linspace(0.0, 1.0, n) if n > 1 else torch.zeros(n)


def to_grid(feature_map: Tensor, num_prefix_tokens: int | None = None) -> Tensor:
    """Lay a feature map out as ``[B, C, H, W]``.

    ``[B, C, H, W]`` is returned as is. Tokens ``[B, N, D]`` lose their ``num_prefix_tokens``
    leading (class/register) tokens and the rest go back on their row-major ``sqrt(N) x sqrt(N)``
    grid with ``C = D``. When ``num_prefix_tokens`` is None it is detected: ``N`` a perfect square
    → 0, ``N - 1`` a perfect square → 1, otherwise ``ValueError`` (pass it explicitly).
    """
    if feature_map.ndim == 4:
        return feature_map
    if feature_map.ndim != 3:
        raise ValueError(
            f"expected a feature map [B, C, H, W] or tokens [B, N, D], got shape "
            f"{tuple(feature_map.shape)}"
        )
    n = feature_map.shape[1]
    if num_prefix_tokens is None:
        if _is_square(n):
            num_prefix_tokens = 0
        elif _is_square(n - 1):
            num_prefix_tokens = 1
        else:
            raise ValueError(
                f"{n} tokens are neither a square grid nor a square grid plus a class token; "
                "pass num_prefix_tokens"
            )
    side = math.isqrt(max(n - num_prefix_tokens, 0))
    if side == 0 or side * side != n - num_prefix_tokens:
        raise ValueError(
            f"{n} tokens minus {num_prefix_tokens} prefix tokens do not form a square grid"
        )
    patches = feature_map[:, num_prefix_tokens:]  # (B, H*W, D)
    return rearrange(patches, "b (h w) d -> b d h w", h=side)  # (B, D, H, W)


def prefix_tokens_of(feature_map: Tensor, model_prefix: int | None) -> int | None:
    """How many prefix tokens one map of a model with ``model_prefix`` of them carries.

    A model's ``num_prefix_tokens`` describes its residual stream, but a patch embedding may
    output the bare grid before the class token is prepended: when ``N - model_prefix`` is not a
    square and ``N`` is, the map has none. ``None`` (detect) and non-token maps pass through.
    """
    if feature_map.ndim != 3 or not model_prefix:
        return model_prefix
    n = feature_map.shape[1]
    return 0 if not _is_square(n - model_prefix) and _is_square(n) else model_prefix


def grids_of(maps: Sequence[FeatureMap], num_prefix_tokens: int | None) -> list[Tensor]:
    """Every map as ``[B, C, H, W]``, given the model's ``num_prefix_tokens`` (see above)."""
    return [to_grid(m.tensor, prefix_tokens_of(m.tensor, num_prefix_tokens)) for m in maps]


def depth_index(maps: Sequence[FeatureMap]) -> dict[str, list[str] | Tensor]:
    """The ``names``, ``kinds`` and normalized ``depth`` fields shared by the profiles."""
    return {
        "names": [m.name for m in maps],
        "kinds": [m.kind for m in maps],
        "depth": normalized_depth(len(maps)),
    }


def find_feature_modules(
    model: nn.Module, modules: ModuleSpec | None = None
) -> list[tuple[str, nn.Module, str]]:
    """The ``(name, module, kind)`` triples whose outputs count as feature maps.

    Order of preference: ``modules`` if given; else every module with a ``feature_kind``
    attribute; else known third-party blocks (torchvision ``BasicBlock``/``Bottleneck`` →
    ``"conv"``, torchvision ``EncoderBlock`` and timm ``Block`` → ``"block"``); else ValueError.
    """
    if modules is not None:
        if isinstance(modules, Mapping):
            return [(n, m, getattr(m, "feature_kind", "block")) for n, m in modules.items()]
        return [(n, m, kind) for n, m, kind in modules]
    tagged = [
        (name, module, module.feature_kind)
        for name, module in model.named_modules()
        if isinstance(getattr(module, "feature_kind", None), str)
    ]
    if tagged:
        return tagged
    known = [
        (name, module, kind)
        for name, module in model.named_modules()
        if (kind := _known_block_kind(module)) is not None
    ]
    if known:
        return known
    raise ValueError(
        f"{type(model).__name__} has no modules tagged with `feature_kind` and no known block "
        "classes; pass modules=[(name, module, kind), ...] or {name: module}"
    )


def collect_feature_maps(
    model: nn.Module, x: Tensor, modules: ModuleSpec | None = None
) -> list[FeatureMap]:
    """Run ``model`` once on ``x`` and return the output of every block, in forward order.

    Without ``modules``, a model whose ``forward_intermediates(x)`` returns
    :class:`FeatureMap` s (our models) is asked for them. Otherwise modules are chosen by
    :func:`find_feature_modules` and read by forward hooks, removed afterwards also when the
    forward pass raises; each selected module must run exactly once, and a tuple output
    contributes its first tensor. The model runs under ``torch.no_grad()`` in eval mode; every
    submodule's original mode is restored afterwards. Maps are detached copies (a later in-place
    op cannot change them). ``x`` is moved to the model's device and the maps stay there: for
    large models, pass fewer ``modules`` or a smaller batch. ``x`` with NaN or inf raises
    ValueError.
    """
    return _collect_feature_maps(model, x, modules, "collect_feature_maps")


def _collect_feature_maps(
    model: nn.Module, x: Tensor, modules: ModuleSpec | None, where: str
) -> list[FeatureMap]:
    """:func:`collect_feature_maps`, with the public caller's name for error messages."""
    # Checked before the copy: free of device syncs for a CPU batch; one sync for a batch already
    # on an accelerator, where the caller reads the results back to the CPU anyway.
    require_finite(x, where)
    if modules is None and _returns_feature_maps(model):
        with eval_mode(model), torch.no_grad():
            maps = model.forward_intermediates(to_device(x, model_device(model)))
        return [FeatureMap(m.name, m.kind, m.tensor.detach().clone()) for m in maps]
    if modules is None and _is_timm(model) and hasattr(model, "forward_intermediates"):
        return timm_feature_maps(model, x)
    if modules is None and torchvision_nodes(model) is not None:
        return torchvision_feature_maps(model, x)
    # Forward hooks rather than torch.fx (torchvision's create_feature_extractor): FX needs a
    # symbolically traceable model, hooks work with any Python control flow in forward().
    selected = find_feature_modules(model, modules)
    captured: list[FeatureMap] = []
    seen: set[str] = set()

    def make_hook(name: str, kind: str) -> Callable[[nn.Module, tuple, object], None]:
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            if name in seen:
                raise ValueError(f"module {name!r} ran more than once in one forward pass")
            seen.add(name)
            captured.append(FeatureMap(name, kind, _first_tensor(output, name).detach().clone()))

        return hook

    handles = [module.register_forward_hook(make_hook(n, k)) for n, module, k in selected]
    try:
        with eval_mode(model), torch.no_grad():
            model(to_device(x, model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name, _, _ in selected if name not in seen]
    if missing:
        raise ValueError(f"these feature modules did not run in forward: {missing}")
    return captured


def _is_timm(model: nn.Module) -> bool:
    return type(model).__module__.startswith("timm.")


def timm_feature_maps(model: nn.Module, x: Tensor) -> list[FeatureMap]:
    """Every intermediate timm's ``forward_intermediates`` gives, as ``[B, C, H, W]`` maps.

    timm lays the maps out itself (``output_fmt="NCHW"``: prefix tokens dropped by the model's
    ``num_prefix_tokens``, NHWC stages permuted), so nothing here depends on shapes. Names are
    the modules of ``model.feature_info`` when it lists one per intermediate; the kind of each
    map comes from its module (:func:`block_kind`).
    """
    require_finite(x, "collect_feature_maps")
    with eval_mode(model), torch.no_grad():
        maps = model.forward_intermediates(
            to_device(x, model_device(model)), output_fmt="NCHW", intermediates_only=True
        )
    info = getattr(model, "feature_info", None)
    names = [f.get("module", f"stage{i}") for i, f in enumerate(info or [])]
    if len(names) != len(maps):
        names = [f"intermediate{i}" for i in range(len(maps))]
    modules = dict(model.named_modules())
    out = []
    for i, (name, tensor) in enumerate(zip(names, maps, strict=True)):
        if tensor.ndim != 4:
            raise ValueError(f"timm returned a {tensor.ndim}-D intermediate {name!r}, not NCHW")
        kind = block_kind(modules.get(name), first=i == 0)
        out.append(FeatureMap(name, kind, tensor.detach().clone()))
    return out


def block_kind(module: nn.Module | None, *, first: bool = False) -> str:
    """The kind of a third-party block, from what it contains.

    ``"block"`` for anything holding attention (a transformer block, or a stage of them: MSA
    and MLP together), ``"stem"`` for a first map computed by something that is not a residual
    stage (e.g. timm ResNet's ``act1``), ``"conv"`` for convolutional blocks or stages.
    """
    if module is None:
        return "block"
    inner = list(module.modules())
    if any("Attention" in type(m).__name__ for m in inner):
        return "block"
    if first and not any(len(list(m.children())) > 1 for m in inner):
        return "stem"
    if any(isinstance(m, nn.Conv2d) for m in inner):
        return "conv"
    return "block"


def torchvision_nodes(model: nn.Module) -> dict[str, str] | None:
    """FX nodes to read from a torchvision ResNet or ViT: ``{node: kind}``; None for others.

    ResNet: the stem (``maxpool``) and every ``BasicBlock``/``Bottleneck``; ViT: the patch
    embedding with class token and position embedding (``encoder.dropout``) and every
    ``EncoderBlock`` (MSA and MLP together: ``"block"``).
    """
    from torchvision.models import ResNet, VisionTransformer
    from torchvision.models.resnet import BasicBlock, Bottleneck
    from torchvision.models.vision_transformer import EncoderBlock

    if isinstance(model, ResNet):
        blocks = [n for n, m in model.named_modules() if isinstance(m, (BasicBlock, Bottleneck))]
        return {"maxpool": "stem", **dict.fromkeys(blocks, "conv")}
    if isinstance(model, VisionTransformer):
        blocks = [n for n, m in model.named_modules() if isinstance(m, EncoderBlock)]
        return {"encoder.dropout": "embed", **dict.fromkeys(blocks, "block")}
    return None


def torchvision_feature_maps(model: nn.Module, x: Tensor) -> list[FeatureMap]:
    """Feature maps of a torchvision ResNet or ViT by ``create_feature_extractor`` (FX).

    torchvision's models are written to be FX-traceable, and FX returns named graph nodes
    without touching the model: the same module names as hooks would give, and the ViT's token
    sequence laid out here by the model's own ``patch_size`` and ``image_size`` (one class token,
    ``class_token``), not by guessing a square. The traced copy shares the model's weights.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    nodes = torchvision_nodes(model)
    if nodes is None:
        raise ValueError(f"{type(model).__name__} is not a torchvision ResNet or ViT")
    require_finite(x, "collect_feature_maps")
    with eval_mode(model), torch.no_grad():
        extractor = create_feature_extractor(model, return_nodes=list(nodes))
        outputs = extractor(to_device(x, model_device(model)))
    maps = []
    for name, kind in nodes.items():
        tensor = outputs[name].detach().clone()
        if tensor.ndim == 3:  # ViT tokens [B, 1 + N, D]: drop the class token, lay out the grid
            side = model.image_size // model.patch_size
            tensor = rearrange(tensor[:, 1:], "b (h w) d -> b d h w", h=side, w=side)
        maps.append(FeatureMap(name, kind, tensor))
    return maps


def _returns_feature_maps(model: nn.Module) -> bool:
    """Whether ``model.forward_intermediates`` is ours (returns :class:`FeatureMap` s).

    Our models declare it by returning FeatureMaps; we recognise them by their package, so that a
    third-party ``forward_intermediates`` with another signature (timm's) is never called here.
    """
    return hasattr(model, "forward_intermediates") and type(model).__module__.startswith(
        "course_lib."
    )


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def _first_tensor(output: object, name: str) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"module {name!r} returned {type(output).__name__}, not a tensor")


def _known_block_kind(module: nn.Module) -> str | None:
    from torchvision.models.resnet import BasicBlock, Bottleneck
    from torchvision.models.vision_transformer import EncoderBlock

    if isinstance(module, (BasicBlock, Bottleneck)):
        return "conv"
    cls = type(module)
    if isinstance(module, EncoderBlock) or (
        cls.__name__ == "Block" and cls.__module__.startswith("timm.")
    ):
        return "block"
    return None


def token_scales(model: nn.Module, images: Tensor) -> dict[str, float]:
    """RMS of the class token and of the patch tokens where they enter a ViT's first block.

    A LayerNorm divides its input by its RMS, so an input 100× smaller than its neighbours is
    amplified 100× more: the reason a small class token makes the ViT's Hessian sharp along it.
    Both are read with their position embeddings: the patch tokens are the model's first
    feature map (patch embedding plus position embedding), the class token is ``cls_token``
    plus its own row of ``pos_embed`` where the model gives it one (ours and timm's ViTs; not
    timm's ``no_embed_class`` models). Empty for models without a class token.
    """
    cls = getattr(model, "cls_token", None)
    if cls is None:
        return {}
    with torch.no_grad(), eval_mode(model):
        embedded = model.forward_intermediates(images.to(cls.device), indices=[0])[0].tensor
    token = cls.detach()[:, :1]
    pos = getattr(model, "pos_embed", None)
    prefix = getattr(model, "num_prefix_tokens", 1)
    if pos is not None and pos.shape[1] == embedded.shape[-2] * embedded.shape[-1] + prefix:
        token = token + pos.detach()[:, :1]
    return {
        "cls": float(token.pow(2).mean().sqrt()),
        "patches": float(embedded.pow(2).mean().sqrt()),
    }
