"""Building blocks shared by every model family (no copies between ResNet, ViT and AlterNet).

The models return their feature maps themselves (``forward_intermediates``, see
:mod:`course_lib.models`). Residual units still carry a class attribute ``feature_kind``
("conv", "msa" or "mlp"; "stem" for the ResNet stem): the lesion study
(:mod:`course_lib.analysis.lesion`) finds the units it can remove by it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """Two-layer perceptron with GELU, applied token-wise: ``[..., dim] -> [..., dim]``."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def grid_coords(side: int) -> Tensor:
    """Row and column of every token of a ``side × side`` grid, row-major: ``(2, side²)``."""
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten()])


def neighbourhood_mask(side: int, kernel: int) -> Tensor:
    """Which keys each query sees under ``kernel × kernel`` neighbourhood attention: ``(N, N)``.

    ``mask[q, k]`` is True when token ``k`` lies in the ``kernel × kernel`` window around token
    ``q`` on the ``side × side`` grid (``N = side²``, row-major). Border rule: the window is
    shifted inwards at the borders, as in neighbourhood attention (Hassani et al., 2023), rather
    than clipped. So every query sees exactly ``kernel²`` tokens: the softmax averages over as
    many tokens at a corner as in the middle (a clipped window would leave corner queries only
    ``(kernel // 2 + 1)²`` keys), and ``kernel = side`` is exactly global attention, the end
    point of the paper's Fig. 7a (3×3, 5×5, global 8×8). For an odd kernel the window is centred
    on the query away from the borders; an even one reaches one token further after it.
    """
    if not 1 <= kernel <= side:
        raise ValueError(f"neighbourhood={kernel} does not fit the {side}×{side} token grid")
    pos = torch.arange(side)
    start = (pos - (kernel - 1) // 2).clamp(0, side - kernel)  # first row/column of the window
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < start[:, None] + kernel)
    # inside[i, j]: grid line j is in the window of a query on line i; combine rows and columns
    rows, cols = grid_coords(side)
    return inside[rows[:, None], rows[None, :]] & inside[cols[:, None], cols[None, :]]


class RelativePositionBias(nn.Module):
    """Learned bias per head for every relative offset ``(dy, dx)`` with ``|dy|, |dx| < span``.

    The table holds ``(2 span - 1)²`` offsets (Swin-style). By default the tokens are one
    ``span × span`` window (window attention); ``side`` lays them on a ``side × side`` grid
    instead (neighbourhood attention), where offsets beyond ``span - 1`` share the edge entries
    of the table (they are masked out by :class:`NeighbourhoodBias`). The index table is a
    precomputed, non-persistent buffer: it depends only on ``span`` and ``side``.
    """

    def __init__(self, span: int, heads: int, side: int | None = None) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros((2 * span - 1) ** 2, heads))
        nn.init.trunc_normal_(self.table, std=0.02)
        coords = grid_coords(side or span)  # (2, N)
        rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N): query minus key
        rel = rel.clamp(-(span - 1), span - 1) + (span - 1)  # (2, N, N), in [0, 2 span - 2]
        self.register_buffer("index", rel[0] * (2 * span - 1) + rel[1], persistent=False)

    def forward(self) -> Tensor:
        """Bias of shape ``(heads, N, N)``, added to the attention logits."""
        return self.table[self.index].permute(2, 0, 1)


class NeighbourhoodBias(RelativePositionBias):
    """:class:`RelativePositionBias` over a whole token grid, ``-inf`` outside each neighbourhood.

    Added to the attention logits of global attention, it makes every query attend to the
    ``kernel × kernel`` tokens around it (:func:`neighbourhood_mask`) with a learned bias per
    relative offset: ``(2 kernel - 1)²`` offsets, because a window shifted inwards at a border
    puts the query up to ``kernel - 1`` tokens from its edge. The mask is a non-persistent
    buffer (``0`` inside, ``-inf`` outside); every row keeps ``kernel²`` finite entries, so the
    softmax never sees an empty row.
    """

    def __init__(self, kernel: int, side: int, heads: int) -> None:
        super().__init__(kernel, heads, side=side)
        mask = torch.zeros(side * side, side * side)
        mask.masked_fill_(~neighbourhood_mask(side, kernel), float("-inf"))
        self.register_buffer("mask", mask, persistent=False)

    def forward(self) -> Tensor:
        """Bias of shape ``(heads, N, N)``: the learned bias inside, ``-inf`` outside."""
        return super().forward() + self.mask


class Attention(nn.Module):
    """Multi-head self-attention over tokens ``[B, N, dim]``: global, windowed or neighbourhood.

    - ``window=None, neighbourhood=None``: every token attends to every other (ViT's global MSA).
    - ``window=w``: the tokens must form a square grid (no class token); it is cut into
      non-overlapping ``w × w`` windows that attend within themselves, with a relative position
      bias (Swin's window MSA without the cyclic shift). Windows never exchange information, so
      a stack of them is a set of separate models; AlterNet uses them in MSA blocks between
      convolutions, which connect the windows.
    - ``neighbourhood=k`` (with ``grid``, the side of the square token grid, no class token):
      every token attends to the ``k × k`` tokens around it (:func:`neighbourhood_mask`), with a
      learned bias per relative offset: neighbourhood attention, the paper's local MSA of
      Fig. 7a. Neighbourhoods overlap, so the receptive field grows with depth:
      ``(L (k - 1) + 1)²`` tokens after ``L`` layers (away from the borders). It runs as global
      attention with an additive bias that is ``-inf`` outside the neighbourhood: cheap for the
      grids of this course (``N ≤ 256`` tokens, an ``(N, N)`` mask).

    Window and neighbourhood attention differ only in how the tokens are grouped: one rearrange
    into windows, or one mask over the whole grid. Attention runs through
    ``F.scaled_dot_product_attention`` with a float ``attn_mask``; the Hessian analyses switch it
    to the math backend, whose double backward and forward-mode derivatives exist.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        head_dim: int | None = None,
        window: int | None = None,
        dropout: float = 0.0,
        *,
        neighbourhood: int | None = None,
        grid: int | None = None,
    ) -> None:
        super().__init__()
        if head_dim is None:
            if dim % heads:
                raise ValueError(f"dim={dim} is not divisible by heads={heads}; pass head_dim")
            head_dim = dim // heads
        if window and neighbourhood:
            raise ValueError("choose window or neighbourhood attention, not both")
        if neighbourhood and not grid:
            raise ValueError("neighbourhood attention needs the side of the token grid (grid=...)")
        self.heads, self.window, self.neighbourhood = heads, window, neighbourhood
        inner = heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner)
        self.proj = nn.Linear(inner, dim)
        self.drop = nn.Dropout(dropout)
        if neighbourhood:
            self.bias = NeighbourhoodBias(neighbourhood, grid, heads)
        else:
            self.bias = RelativePositionBias(window, heads) if window else None

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        if self.window:
            side = int(round(n**0.5))
            w = self.window
            # (B, H*W, D) -> (B * windows, w*w, D)
            x = rearrange(x, "b (hw w1 ww w2) d -> (b hw ww) (w1 w2) d", w1=w, w2=w, ww=side // w)
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        mask = self.bias() if self.bias is not None else None  # (H, n, n) or None
        p = self.drop.p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        out = self.proj(rearrange(out, "b h n d -> b n (h d)"))
        if self.window:
            out = rearrange(
                out, "(b hw ww) (w1 w2) d -> b (hw w1 ww w2) d", b=b, w1=w, w2=w, ww=side // w
            )
        return self.drop(out)


class AttentionResidual(nn.Module):
    """The MSA sub-block of a transformer: ``x + attn(norm(x))`` on tokens ``[B, N, D]``."""

    feature_kind = "msa"

    def __init__(self, dim: int, attn: Attention, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = attn
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop_path(self.attn(self.norm(x)))


class MlpResidual(nn.Module):
    """The MLP sub-block of a transformer: ``x + mlp(norm(x))`` on tokens ``[B, N, D]``."""

    feature_kind = "mlp"

    def __init__(self, dim: int, mlp_ratio: float, dropout: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop_path(self.mlp(self.norm(x)))


class Block(nn.Module):
    """A pre-norm transformer block: the MSA sub-block, then the MLP sub-block.

    The paper counts the residual stream after each sub-block as a depth of its own (Fig. 8, 9),
    so :meth:`ViT.forward_intermediates <course_lib.models.vit.ViT.forward_intermediates>` reads
    ``msa`` and ``mlp`` separately; the lesion study removes them separately too.
    """

    def __init__(
        self,
        dim: int,
        attn: Attention,
        mlp_ratio: float,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.msa = AttentionResidual(dim, attn, drop_path)
        self.mlp = MlpResidual(dim, mlp_ratio, dropout, drop_path)

    @property
    def attn(self) -> Attention:
        """The block's attention layer (inside the MSA sub-block)."""
        return self.msa.attn

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.msa(x))


def conv_shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1×1 convolution (on the pre-activated input)."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class PreActResidual(nn.Module):
    """``skip + drop_path(branch(act(bn1(x))))``: the pre-activation residual pattern.

    The shortcut is the identity, or (when the shape changes) a projection of the
    pre-activated input, as in He et al. (2016b). Subclasses set ``bn1``, ``shortcut``,
    ``drop_path`` and :meth:`branch`; ``activation`` is ReLU unless they say otherwise.
    """

    activation = staticmethod(F.relu)

    def branch(self, out: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        out = self.activation(self.bn1(x))
        skip = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(out)
        return skip + self.drop_path(self.branch(out))


class PreActBlock(PreActResidual):
    """Pre-activation basic residual block: (BN-ReLU-conv3×3) × 2 plus shortcut."""

    feature_kind = "conv"
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1, drop_path: float = 0.0) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, padding=1, bias=False)
        self.shortcut = conv_shortcut(in_ch, out_ch, stride)
        self.drop_path = DropPath(drop_path)

    def branch(self, out: Tensor) -> Tensor:
        return self.conv2(F.relu(self.bn2(self.conv1(out))))


class PreActBottleneck(PreActResidual):
    """Pre-activation bottleneck block: BN-ReLU-conv1×1, BN-ReLU-conv3×3, BN-ReLU-conv1×1 (×4)."""

    feature_kind = "conv"
    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, drop_path: float = 0.0) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.shortcut = conv_shortcut(in_ch, out_ch, stride)
        self.drop_path = DropPath(drop_path)

    def branch(self, out: Tensor) -> Tensor:
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return self.conv3(F.relu(self.bn3(out)))


class MSABlock(PreActResidual):
    """AlterNet's MSA block on feature maps ``[B, C, H, W]`` (paper Sec. 4, official code).

    Pre-activation like the conv blocks it replaces: BN → GELU → 1×1 conv → BN → windowed
    multi-head attention with relative position bias (head dim 64 by default), plus shortcut.
    """

    feature_kind = "msa"

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        heads: int,
        window: int,
        stride: int = 1,
        head_dim: int = 64,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.attn = Attention(out_ch, heads, head_dim=head_dim, window=window)
        self.shortcut = conv_shortcut(in_ch, out_ch, stride)
        self.drop_path = DropPath(drop_path)

    activation = staticmethod(F.gelu)

    def branch(self, out: Tensor) -> Tensor:
        out = self.bn2(self.conv(out))
        h, w = out.shape[-2:]
        tokens = rearrange(out, "b c h w -> b (h w) c")
        return rearrange(self.attn(tokens), "b (h w) c -> b c h w", h=h, w=w)


def take_indices(n: int, indices: int | Sequence[int] | None) -> list[int]:
    """Which of ``n`` intermediates to return, as timm's ``forward_intermediates`` reads it.

    ``None``: all of them; an int ``k``: the last ``k``; a sequence: those indices (negative ones
    count from the end), in ascending order. Raises ValueError for indices out of range.
    """
    if indices is None:
        return list(range(n))
    if isinstance(indices, int):
        if not 0 < indices <= n:
            raise ValueError(f"indices={indices}: the model has {n} intermediates")
        return list(range(n - indices, n))
    chosen = sorted({i + n if i < 0 else i for i in indices})
    bad = [i for i in chosen if not 0 <= i < n]
    if bad:
        raise ValueError(f"indices {bad} out of range: the model has {n} intermediates")
    return chosen


def check_output_fmt(output_fmt: str) -> None:
    """``"NCHW"`` (maps ``[B, C, H, W]``) or ``"NLC"`` (tokens ``[B, N, C]``), else ValueError."""
    if output_fmt not in ("NCHW", "NLC"):
        raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', not {output_fmt!r}")
