"""The harness's model blocks compute what the torch modules they stand for compute."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rambench.models.encoders import MaxPool2x2


def _map_with_ties(shape: tuple[int, ...]) -> torch.Tensor:
    """Values on a coarse grid (many equal maxima in a window), a NaN and infinities."""
    x = torch.randint(-3, 4, shape).float() / 2
    flat = x.view(-1)
    flat[0], flat[-1], flat[len(flat) // 2] = float("nan"), float("-inf"), float("inf")
    return x


@pytest.mark.parametrize("shape", [(2, 3, 8, 10), (2, 3, 9, 11), (1, 1, 2, 3), (4, 5, 3, 2)])
def test_the_2x2_pool_gives_max_pool2d_values_bit_for_bit_without_gradients(shape):
    torch.manual_seed(0)
    x = _map_with_ties(shape)
    with torch.no_grad():
        fast = MaxPool2x2()(x)
    expected = F.max_pool2d(x, 2)
    assert fast.shape == expected.shape
    assert torch.equal(fast.nan_to_num(7.0), expected.nan_to_num(7.0))
    assert torch.equal(fast.isnan(), expected.isnan()) and fast.isnan().any()


def test_the_2x2_pool_takes_max_pool2d_itself_where_a_gradient_is_needed():
    """Gradients go to the first maximum of a window, as max_pool2d routes them: with ties
    everywhere, a pool that split or moved them would give another gradient."""
    torch.manual_seed(0)
    x = torch.randint(0, 2, (2, 3, 9, 11)).float()
    weights = torch.randn(2, 3, 4, 5)
    grads = []
    for pool in (MaxPool2x2(), lambda t: F.max_pool2d(t, 2)):
        leaf = x.clone().requires_grad_()
        (pool(leaf) * weights).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])
    assert (grads[0] != 0).sum() == weights.numel()  # one winner per window
