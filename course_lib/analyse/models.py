"""Build the model to analyse from a spec: ``timm:NAME``, ``torchvision:NAME`` or a course model.

Every error is a ``ValueError`` with one line that says what to do (the command prints it as
is): unknown names list the valid ones (or the closest ones, for timm's ~1,000 names), a
missing weights file names the path, pretrained weights that cannot be fetched say how to get
them on a machine without internet.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from torch import nn

SOURCES = ("timm", "torchvision")


def split_spec(spec: str) -> tuple[str, str]:
    """``"timm:resnet18"`` → ``("timm", "resnet18")``; a bare name is a course model."""
    source, sep, name = spec.partition(":")
    if not sep:
        return "course", spec
    if source not in SOURCES:
        raise ValueError(
            f"unknown model source {source!r} in {spec!r}; use timm:NAME, torchvision:NAME or a "
            "course model name (python -m course_lib models)"
        )
    if not name:
        raise ValueError(f"{spec!r} names no model; e.g. {source}:resnet18")
    return source, name


def load_model(
    spec: str,
    *,
    num_classes: int,
    image_size: int,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """The model for ``spec``, in eval mode, on the CPU.

    ``num_classes`` sets the classifier's outputs (a pretrained head with another number of
    classes is replaced by a new one, as timm and torchvision do); ``image_size`` is passed to
    models that need it (ViTs, Swin). ``weights``: a local checkpoint, loaded with
    ``weights_only=True`` (:func:`course_lib.io.load_checkpoint`): a state dict, or a dict
    with the state dict under ``"model"`` (what ``python -m course_lib train`` writes).
    ``pretrained``: the library's default pretrained weights (needs internet or a filled
    download cache). ``kwargs`` go to the model's constructor (e.g. ``depth=2`` for a small timm
    ViT).
    """
    if weights is not None and pretrained:
        raise ValueError("give --weights or --pretrained, not both")
    source, name = split_spec(spec)
    if source == "course" and pretrained:
        raise ValueError(
            f"course models have no pretrained weights; train one (python -m course_lib train "
            f"--model {name} ...) and pass --weights RUN/checkpoint.pt"
        )
    build = {"timm": _timm, "torchvision": _torchvision, "course": _course}[source]
    model = build(name, num_classes, image_size, pretrained, kwargs)
    if weights is not None:
        _load_weights(model, weights)
    model.model_spec = spec
    return model.eval()


def _course(name: str, num_classes: int, image_size: int, pretrained: bool, kwargs: dict):
    from course_lib.models import create_model

    return create_model(name, num_classes=num_classes, image_size=image_size, **kwargs)


def _timm(name: str, num_classes: int, image_size: int, pretrained: bool, kwargs: dict):
    try:
        import timm
    except ImportError as err:
        raise ValueError(
            "timm models need timm: pip install 'course_lib[timm]' (or timm==1.0.31)"
        ) from err
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"closest: {', '.join(close)}" if close else "see timm.list_models('*pattern*')"
        raise ValueError(f"timm has no model {name!r}; {hint}")
    args = dict(num_classes=num_classes, **kwargs)
    try:
        # ViTs and Swin need the image size; most CNNs take any size and refuse the argument.
        return _pretrained_guard(
            lambda: timm.create_model(name, pretrained=pretrained, img_size=image_size, **args),
            f"timm:{name}",
            pretrained,
        )
    except TypeError as err:
        if "img_size" not in str(err):
            raise
    return _pretrained_guard(
        lambda: timm.create_model(name, pretrained=pretrained, **args), f"timm:{name}", pretrained
    )


def _torchvision(name: str, num_classes: int, image_size: int, pretrained: bool, kwargs: dict):
    import torchvision.models as tvm

    valid = tvm.list_models(module=tvm)
    if name not in valid:
        raise ValueError(
            f"torchvision has no classification model {name!r}; valid: {', '.join(valid)}"
        )
    if name.startswith("vit_"):
        kwargs = {"image_size": image_size, **kwargs}
    if not pretrained:
        return tvm.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    model = _pretrained_guard(
        lambda: tvm.get_model(name, weights="DEFAULT", **kwargs), f"torchvision:{name}", True
    )
    head = _replace_head(model, num_classes)
    if head is None:
        raise ValueError(f"cannot give torchvision:{name} a {num_classes}-class head")
    return model


def _replace_head(model: nn.Module, num_classes: int) -> nn.Module | None:
    """Swap the last linear layer for one with ``num_classes`` outputs (if it has another)."""
    for path in ("fc", "heads.head", "classifier.1", "head"):
        try:
            layer = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(layer, nn.Linear):
            if layer.out_features != num_classes:
                model.set_submodule(path, nn.Linear(layer.in_features, num_classes))
            return model
    return None


def _pretrained_guard(build, label: str, pretrained: bool):
    """Run ``build()``; turn a failed download of pretrained weights into one clear line."""
    if not pretrained:
        return build()
    try:
        return build()
    except TypeError:  # a wrong argument, not a download (timm: img_size, see _timm)
        raise
    except Exception as err:  # network and hub errors come in many types, some ValueErrors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ValueError(
            f"could not get the pretrained weights of {label} ({type(err).__name__}: {first}); "
            "this machine may be offline: load them once on a connected machine (they land in "
            "~/.cache/huggingface or ~/.cache/torch), copy that cache here, or save the "
            "state_dict and pass --weights FILE"
        ) from None


def _load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    from course_lib.io import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no weights file at {path}; check the path given to --weights")
    state = load_checkpoint(path)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise ValueError(
            f"{path} does not fit this model ({' '.join(first[:2])[:300]}); "
            "check --model, the number of classes of --data and --image-size"
        ) from None
