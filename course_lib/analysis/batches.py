"""How every analysis reads its data: one batch, a list of batches, or a DataLoader.

The analyses take data in one of three forms and all mean the same by them:

* one batch ``(inputs, targets)``: a tuple or list of at least two items whose first is a tensor
  (extra items, e.g. sample indices, are ignored);
* a list (or tuple) of such batches;
* any other iterable of batches, such as a ``torch.utils.data.DataLoader``.

:func:`iter_batches` turns any of them into ``(inputs, targets)`` pairs on a device,
:func:`load_batch` does the same for the functions that take exactly one batch, and
:func:`require_finite` rejects inputs with NaN or inf, which would otherwise come out as a NaN
loss, a NaN spectrum or a silently wrong accuracy far from their cause. Every error starts with the
name of the public function the user called (``where``) and says how to fix the data.

Cost of the finiteness check: for inputs on the CPU (what a ``DataLoader`` yields, pinned or not)
it is one pass over the batch on the CPU, made *before* the batch is copied to an accelerator, so
the accelerator never waits for it. For inputs that already live on an accelerator it costs one
host sync per floating tensor of the inputs (one for the usual image tensor): see
:func:`require_finite`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

Batch = tuple[Any, Any]
"""``(inputs, targets)``; ``inputs`` is usually a tensor, but may be a tuple/list/dict of them."""


def is_single_batch(data: Any) -> bool:
    """True if ``data`` is one batch: a tuple or list of >= 2 items whose first is a tensor."""
    return isinstance(data, (tuple, list)) and len(data) >= 2 and isinstance(data[0], Tensor)


def to_device(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor in it (nested tuples, lists, dicts) moved to ``device``.

    Copies to an accelerator are ``non_blocking`` (asynchronous from pinned memory; later work on
    the same stream waits for them). Copies to the CPU are blocking: a non-blocking copy to the
    host could be read before it has arrived. Other objects pass through unchanged.
    """
    device = torch.device(device)
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=device.type != "cpu")
    if isinstance(obj, Mapping):
        return {key: to_device(value, device) for key, value in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple
        return type(obj)(*(to_device(item, device) for item in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(item, device) for item in obj)
    return obj


def require_finite(inputs: Any, where: str, *, sync: bool = True) -> None:
    """Raise ValueError if a floating tensor in ``inputs`` holds NaN or inf.

    ``inputs``: a tensor or a tuple/list/dict of them; integer tensors (token ids, labels) cannot
    hold NaN and are skipped, as are non-tensors. Call it before moving the inputs to an
    accelerator: on the CPU it costs one pass over the data and no device sync. Inputs already on
    an accelerator are checked where they are, at the price of one host sync (``bool(...)``) per
    floating tensor; the callers accept that once per batch, which is small next to the forward
    pass(es) each batch feeds. ``sync=False`` skips such tensors instead (for a loop that reads
    the same data again and has checked it once).
    """
    tensors = [
        t
        for t in _tensors(inputs)
        if (t.is_floating_point() or t.is_complex()) and (sync or t.device.type == "cpu")
    ]
    for tensor in tensors:
        if not bool(torch.isfinite(tensor).all()):  # on an accelerator: the one sync
            n = sum(int(torch.isfinite(t).logical_not().sum()) for t in tensors)
            raise ValueError(
                f"{where}: the inputs contain NaN or inf ({n} values) — clean the data "
                "(e.g. torch.nan_to_num) or drop those images"
            )


def split_batch(batch: Any, where: str) -> Batch:
    """``(inputs, targets)`` of one batch ``(inputs, targets, ...)``; ValueError for others."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(f"{where}: expected a batch (inputs, targets), got {_describe(batch)}{_HINT}")


def load_batch(batch: Any, device: torch.device | str | None, where: str) -> Batch:
    """One batch for the functions that take exactly one: split, checked finite, moved.

    ``device=None`` leaves the tensors where they are. A list of batches is refused with a
    pointer to passing one of them.
    """
    if (
        isinstance(batch, (tuple, list))
        and len(batch) >= 2
        and all(is_single_batch(item) for item in batch)
    ):
        raise ValueError(
            f"{where} takes one (inputs, targets) batch, got a sequence of {len(batch)} batches: "
            "pass one of them (e.g. batches[0])"
        )
    inputs, targets = split_batch(batch, where)
    require_finite(inputs, where)
    if device is None:
        return inputs, targets
    return to_device(inputs, device), to_device(targets, device)


def iter_batches(
    data: Batch | Sequence[Batch] | Iterable[Batch],
    device: torch.device | str | None = None,
    max_batches: int | None = None,
    *,
    where: str = "the analysis",
    check_finite: bool = True,
    sync: bool = True,
) -> Iterator[Batch]:
    """``(inputs, targets)`` for each batch of ``data``, on ``device``.

    Args:
        data: one batch, a list of batches, or any iterable of batches (a ``DataLoader``); see the
            module docstring. Extra batch items are dropped.
        device: where to move the tensors (``non_blocking``, see :func:`to_device`); ``None``
            leaves them where they are.
        max_batches: stop after this many batches (``None``: all). Must be at least 1.
        where: the public function's name, for error messages.
        check_finite: run :func:`require_finite` on each batch's inputs before moving them.
        sync: passed to :func:`require_finite`; ``False`` checks only inputs on the CPU.

    Raises ValueError, when the iteration reaches it, for a malformed batch, non-finite inputs
    (naming the batch's index) or data that yields no batch at all. The iterable is read lazily
    and anew on every call: a shuffling ``DataLoader`` gives different batches each time.
    """
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"{where}: max_batches must be None or at least 1, got {max_batches}")
    if isinstance(data, Tensor) or isinstance(data, Mapping) or not isinstance(data, Iterable):
        got = _describe(data)
        raise ValueError(f"{where}: expected batches (inputs, targets), got {got}{_HINT}")
    if is_single_batch(data):
        data = [data]
    n = 0
    for batch in itertools.islice(data, max_batches):
        inputs, targets = split_batch(batch, f"{where} (batch {n})")
        if check_finite:
            require_finite(inputs, f"{where} (batch {n})", sync=sync)
        if device is not None:
            inputs, targets = to_device(inputs, device), to_device(targets, device)
        yield inputs, targets
        n += 1
    if n == 0:
        raise ValueError(
            f"{where} got no batches: pass at least one (inputs, targets) batch, and check that "
            "the DataLoader is not empty (or an exhausted iterator)"
        )


_HINT = (
    ": pass one (inputs, targets) pair, a list of them, or a DataLoader that yields them (for a "
    "dataset of dicts, e.g. ((b['image'], b['label']) for b in loader))"
)


def _describe(obj: Any) -> str:
    if isinstance(obj, Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} item(s)"
    return f"a {type(obj).__name__}"


def _tensors(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
