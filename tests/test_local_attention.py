"""Local attention: window and k×k neighbourhood attention, their masks, reach and derivatives."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from course_lib.models import create_model
from course_lib.models.layers import Attention, neighbourhood_mask


def test_window_attention_stays_in_its_window():
    """Non-overlapping windows (AlterNet's MSA blocks): one token changes its own window only."""
    torch.manual_seed(0)
    attn = Attention(16, 2, window=4).eval()
    tokens = torch.randn(1, 64, 16)
    changed = tokens.clone()
    changed[0, 0] += torch.randn(16)  # token (0, 0): window rows 0-3, columns 0-3
    diff = (attn(changed) - attn(tokens)).abs().sum(-1).reshape(8, 8)
    assert (diff[:4, :4] > 1e-6).all()
    assert diff[4:, :].max() == 0 and diff[:, 4:].max() == 0


def _box(side: int, rows: range, cols: range) -> torch.Tensor:
    box = torch.zeros(side, side, dtype=torch.bool)
    box[rows.start : rows.stop, cols.start : cols.stop] = True
    return box


@pytest.mark.parametrize("kernel", [1, 2, 3, 5, 8])
def test_neighbourhood_mask_shifts_the_window_inwards_at_the_borders(kernel):
    side = 8
    mask = neighbourhood_mask(side, kernel)
    assert mask.shape == (64, 64)
    assert (mask.sum(1) == kernel**2).all()  # every query sees k² keys, corners included
    assert mask.diagonal().all()  # ... itself among them
    half = (kernel - 1) // 2
    for (r, c), (r0, c0) in {
        (3, 4): (3 - half, 4 - half),  # interior: centred (odd k)
        (0, 0): (0, 0),  # corner: the window starts at the border
        (7, 7): (side - kernel, side - kernel),  # far corner: it ends at the border
    }.items():
        r0, c0 = min(max(r0, 0), side - kernel), min(max(c0, 0), side - kernel)
        expected = _box(side, range(r0, r0 + kernel), range(c0, c0 + kernel))
        assert torch.equal(mask[r * side + c].reshape(side, side), expected), (r, c)
    if kernel == side:
        assert mask.all()  # k = side is global attention


def test_neighbourhood_mask_rejects_kernels_larger_than_the_grid():
    with pytest.raises(ValueError, match="neighbourhood=9 does not fit the 8×8 token grid"):
        neighbourhood_mask(8, 9)


def test_neighbourhood_buffers_are_precomputed_and_not_saved():
    model = create_model("local_vit_tiny")
    bias = model.blocks[0].attn.bias
    assert bias.table.shape == ((2 * 3 - 1) ** 2, model.config.heads)
    assert bias.mask.shape == bias.index.shape == (64, 64)
    assert not any(k.endswith((".mask", ".index")) for k in model.state_dict())
    logits_bias = bias()  # (heads, N, N): learned bias inside, -inf outside
    inside = neighbourhood_mask(8, 3)
    assert torch.isfinite(logits_bias[:, inside]).all()
    assert torch.isneginf(logits_bias[:, ~inside]).all()


def _input_gradient(depth: int, query: tuple[int, int]) -> torch.Tensor:
    """|d out[query] / d in[token]| over the 8×8 grid of a ``depth``-block local ViT's blocks."""
    torch.manual_seed(0)
    model = create_model("local_vit_tiny", depth=depth).eval()
    tokens = torch.randn(1, 64, model.config.dim, requires_grad=True)
    out = model.blocks(tokens)[0, query[0] * 8 + query[1]]
    (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), tokens)
    return grad[0].abs().sum(-1).reshape(8, 8)


@pytest.mark.parametrize(
    "query, one_block, two_blocks",
    [
        # interior token (3, 3): 3×3 window rows/cols 2-4; after two blocks 5×5, rows/cols 1-5
        ((3, 3), (range(2, 5), range(2, 5)), (range(1, 6), range(1, 6))),
        # corner token (0, 0): the window shifted inwards, rows/cols 0-2; then rows/cols 0-3
        ((0, 0), (range(0, 3), range(0, 3)), (range(0, 4), range(0, 4))),
    ],
)
def test_local_attention_reaches_beyond_its_window_with_depth(query, one_block, two_blocks):
    """One block: the gradient is exactly zero outside the 3×3 neighbourhood. Two blocks: it is
    non-zero outside the query's own window, inside the (2(k-1)+1)² = 5×5 receptive field, and
    still exactly zero outside that field."""
    for depth, field in ((1, one_block), (2, two_blocks)):
        grad = _input_gradient(depth, query)
        inside = _box(8, *field)
        assert (grad[inside] > 0).all(), f"depth {depth}: a token inside the field is ignored"
        assert (grad[~inside] == 0).all(), f"depth {depth}: a token outside the field leaks in"
    window = _box(8, *one_block)
    assert (_input_gradient(2, query)[~window] > 0).any()  # connected: it looks past its window


def test_neighbourhood_attention_has_double_backward_and_forward_mode_derivatives():
    """The Hessian analyses need the gradient of a gradient (math backend of SDPA)."""
    torch.manual_seed(0)
    attn = Attention(16, 2, neighbourhood=3, grid=4).double()
    x = torch.randn(2, 16, 16, dtype=torch.float64, requires_grad=True)
    with sdpa_kernel([SDPBackend.MATH]):
        (g,) = torch.autograd.grad(attn(x).pow(2).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g.pow(2).sum(), x)
        assert torch.isfinite(h).all() and h.abs().sum() > 0
        # forward mode through the same layer
        tangent = torch.randn_like(x)
        _, jvp = torch.func.jvp(lambda t: attn(t), (x.detach(),), (tangent,))
        assert torch.isfinite(jvp).all()


def test_hessian_vector_product_of_a_local_vit_matches_finite_differences():
    torch.manual_seed(0)
    model = create_model("local_vit_tiny", num_classes=3).double().eval()
    params = list(model.parameters())
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 2])
    v = [torch.randn_like(p) for p in params]

    def grads(create_graph: bool = False) -> tuple[torch.Tensor, ...]:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        return torch.autograd.grad(loss, params, create_graph=create_graph)

    with sdpa_kernel([SDPBackend.MATH]):
        g = grads(create_graph=True)
        hv = torch.autograd.grad(g, params, grad_outputs=v)
        eps = 1e-5  # central differences: error ∝ eps², ≈ 3e-8 relative here
        with torch.no_grad():
            for p, d in zip(params, v, strict=True):
                p.add_(d, alpha=eps)
        plus = grads()
        with torch.no_grad():
            for p, d in zip(params, v, strict=True):
                p.sub_(d, alpha=2 * eps)
        minus = grads()
    fd = torch.cat([(a - b).flatten() / (2 * eps) for a, b in zip(plus, minus, strict=True)])
    exact = torch.cat([h.flatten() for h in hv])
    assert torch.isfinite(exact).all() and exact.abs().max() > 0
    assert (exact - fd).norm() / exact.norm() < 1e-6
