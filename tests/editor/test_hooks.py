"""Capture and add hooks: positions, tuple outputs, removal on exceptions, early stop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from editor.hooks import add_to_output, capture_input, capture_output


class TupleBlock(nn.Module):
    """A module returning a tuple, like a decoder block in older transformers."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.lin(x), None


class Net(nn.Module):
    """Two tuple blocks and a head."""

    def __init__(self, d: int = 4) -> None:
        super().__init__()
        self.a = TupleBlock(d)
        self.b = TupleBlock(d)
        self.head = nn.Linear(d, 3)
        self.b_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)[0]
        self.b_calls += 1
        return self.head(self.b(h)[0])


@pytest.fixture
def net() -> Net:
    torch.manual_seed(0)
    return Net()


def test_capture_input_and_output_at_positions(net: Net) -> None:
    x = torch.randn(2, 5, 4)
    rows, cols = [0, 1, 1], [4, 0, 2]
    with capture_input(net.b, rows, cols) as cin, capture_output(net.b, rows, cols) as cout:
        net(x)
    h = net.a(x)[0]
    torch.testing.assert_close(cin.value, h[rows, cols])
    torch.testing.assert_close(cout.value, net.b(h)[0][rows, cols])
    assert not net.b._forward_hooks and not net.b._forward_pre_hooks


def test_capture_whole_tensor(net: Net) -> None:
    x = torch.randn(2, 5, 4)
    with capture_output(net.a) as cap:
        net(x)
    assert cap.value.shape == (2, 5, 4)


def test_add_to_tuple_output_only_at_positions(net: Net) -> None:
    x = torch.randn(2, 5, 4)
    vec = torch.tensor([1.0, -2.0, 3.0, 0.5])
    with capture_output(net.b) as clean:
        net(x)
    with add_to_output(net.a, [1], [3], vec), capture_input(net.b) as cin:
        net(x)
    h = net.a(x)[0]
    expected = h.clone()
    expected[1, 3] += vec
    torch.testing.assert_close(cin.value, expected)
    assert clean.value is not None and not net.a._forward_hooks


def test_add_per_row_vectors_is_differentiable(net: Net) -> None:
    x = torch.randn(2, 5, 4)
    vecs = torch.zeros(2, 4, requires_grad=True)
    with add_to_output(net.a, [0, 1], [1, 2], vecs):
        out = net(x).sum()
    out.backward()
    assert vecs.grad is not None and vecs.grad.abs().sum() > 0


def test_hooks_removed_on_exception(net: Net) -> None:
    with (
        pytest.raises(RuntimeError),
        capture_output(net.a),
        add_to_output(net.a, [0], [0], torch.ones(4)),
    ):
        raise RuntimeError("boom")
    assert not net.a._forward_hooks and not net.a._forward_pre_hooks


def test_stop_ends_the_forward_after_the_module(net: Net) -> None:
    x = torch.randn(1, 3, 4)
    net.b_calls = 0
    with capture_output(net.a, stop=True) as cap:
        net(x)
        pytest.fail("the forward pass should have stopped")
    assert cap.value is not None and net.b_calls == 0
    assert not net.a._forward_hooks
