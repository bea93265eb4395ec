"""The CPU recurrent layer (lopmodels/bidirectional.py) computes what PyTorch's packed GRU and LSTM compute."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lopmodels import ModelSpec, build_model
from lopmodels.bidirectional import bidirectional, tanh_

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# (inputs, lengths): images fill every step; token batches pad after each sequence's end
SHAPES = {
    "full": (8, 28, None),  # an image batch: 28 rows of 28 pixels is large, so fewer rows here
    "padded": (6, 7, [1, 7, 3, 7, 2, 5]),
    "ties": (5, 4, [4, 4, 1, 1, 2]),
}


def weights(rnn: nn.RNNBase) -> list[torch.Tensor]:
    return [getattr(rnn, f"{name}_l0{suffix}") for suffix in ("", "_reverse") for name in NAMES]


def pytorch(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | None):
    """(h_n, out) of the module itself: packed when there are lengths, padding positions zero."""
    if lengths is None:
        out, state = rnn(x)
    else:
        packed, state = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        out = pad_packed_sequence(packed, batch_first=True, total_length=x.shape[1])[0]
    return (state[0] if isinstance(state, tuple) else state), out


def case(cell: str, shape: str, dtype=torch.float32, features: int = 5, hidden: int = 4):
    torch.manual_seed(0)
    batch, steps, lengths = SHAPES[shape]
    rnn = CELLS[cell](features, hidden, batch_first=True, bidirectional=True).to(dtype)
    x = torch.randn(batch, steps, features, dtype=dtype, requires_grad=True)
    return rnn, x, None if lengths is None else torch.tensor(lengths)


def gradients(cell: str, shape: str, dtype: torch.dtype, ours: bool):
    """(h_n, out, gradients of x and the eight weights) of one way, for fixed random output gradients."""
    rnn, x, lengths = case(cell, shape, dtype)
    if ours:
        h_n, out = bidirectional(cell, x, lengths, weights(rnn), sequence=True)
    else:
        h_n, out = pytorch(rnn, x, lengths)
    generator = torch.Generator().manual_seed(2)
    probe_h = torch.randn(h_n.shape, generator=generator, dtype=dtype)  # both outputs carry gradients
    probe_out = torch.randn(out.shape, generator=generator, dtype=dtype)
    grads = torch.autograd.grad((h_n * probe_h).sum() + (out * probe_out).sum(), [x, *weights(rnn)])
    return h_n.detach(), out.detach(), grads


GRADIENTS = ["x", *(f"{n}{s}" for s in ("", "_reverse") for n in NAMES)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cell", CELLS)
def test_float64_outputs_and_gradients_equal_pytorch(cell, shape):
    """The same mathematics: in float64 every output and gradient equals PyTorch's to 1e-12."""
    h_n, out, grads = gradients(cell, shape, torch.float64, ours=True)
    h_ref, out_ref, grads_ref = gradients(cell, shape, torch.float64, ours=False)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out, out_ref, rtol=1e-10, atol=1e-12)
    for name, a, b in zip(GRADIENTS, grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cell", CELLS)
def test_float32_equals_pytorch_and_is_as_accurate(cell, shape):
    """In float32 the outputs equal PyTorch's within rtol 1e-5, atol 1e-6, and so do the gradients where
    PyTorch's own float32 rounding allows it: over 28 steps a summed weight gradient of PyTorch's float32
    is up to 9e-6 from the float64 value (ours: up to 4e-6), so the gradients are held to atol 1e-5 and
    to being no farther from the float64 truth than twice PyTorch's own float32 error."""
    h_n, out, grads = gradients(cell, shape, torch.float32, ours=True)
    h_ref, out_ref, grads_ref = gradients(cell, shape, torch.float32, ours=False)
    truth = gradients(cell, shape, torch.float64, ours=False)[2]
    torch.testing.assert_close(h_n, h_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    for name, a, b, exact in zip(GRADIENTS, grads, grads_ref, truth):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
        ours_error, pytorch_error = (float((g.double() - exact).abs().max()) for g in (a, b))
        assert ours_error <= 2 * pytorch_error + 1e-7, (name, ours_error, pytorch_error)


@pytest.mark.parametrize("shape", ["padded", "ties"])
@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_in_float64(cell, shape):
    rnn, x, lengths = case(cell, shape, dtype=torch.float64, features=3, hidden=2)
    x = x.detach().requires_grad_()
    params = [w.detach().requires_grad_() for w in weights(rnn)]

    def both(x, *params):
        h_n, out = bidirectional(cell, x, lengths, params, sequence=True)
        return h_n, out

    assert torch.autograd.gradcheck(both, (x, *params))


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_without_padding(cell):
    torch.manual_seed(1)
    rnn = CELLS[cell](3, 2, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 4, 3, dtype=torch.float64, requires_grad=True)
    params = [w.detach().requires_grad_() for w in weights(rnn)]
    assert torch.autograd.gradcheck(lambda x, *p: bidirectional(cell, x, None, p)[0], (x, *params))


@pytest.mark.parametrize("cell", CELLS)
def test_the_same_inputs_give_the_same_bits(cell):
    rnn, x, lengths = case(cell, "padded")
    first = bidirectional(cell, x, lengths, weights(rnn))[0]
    grads = torch.autograd.grad(first.sum(), [x, *weights(rnn)])
    second = bidirectional(cell, x, lengths, weights(rnn))[0]
    assert torch.equal(first, second)
    assert all(torch.equal(a, b) for a, b in zip(grads, torch.autograd.grad(second.sum(), [x, *weights(rnn)])))


@pytest.mark.parametrize("name,kind", [("gru", "tokens"), ("lstm", "image"), ("lstm", "tokens")])
def test_models_use_it_and_match_the_modules_own_packed_run(name, kind):
    """The model's features on the CPU are the packed module's, for the "state" readout."""
    spec = ModelSpec(kind, num_classes=3, hidden=4, embed=6, vocab_size=20) if kind == "tokens" else \
        ModelSpec(kind, num_classes=3, hidden=4)
    net = build_model(name, spec, torch.Generator().manual_seed(0))
    if kind == "tokens":
        lengths = torch.tensor([1, 7, 3, 7, 2, 5])
        inputs = torch.randint(1, 20, (6, 7))
        x = net.embedding(inputs)
    else:
        lengths, inputs = None, torch.randn(4, 28, 28)
        x = inputs
    h_n, _ = pytorch(net.rnn, x, lengths)
    torch.testing.assert_close(net.forward_units(inputs, lengths).features, torch.cat((h_n[0], h_n[1]), dim=1),
                               rtol=1e-5, atol=1e-6)


def test_refuses_what_it_does_not_compute():
    rnn, x, lengths = case("gru", "padded")
    with pytest.raises(ValueError, match="lengths must lie in 1..7"):
        bidirectional("gru", x, torch.tensor([0, 7, 3, 7, 2, 5]), weights(rnn))
    with pytest.raises(ValueError, match="lengths must lie in 1..7"):
        bidirectional("gru", x, torch.tensor([8, 7, 3, 7, 2, 5]), weights(rnn))
    with pytest.raises(ValueError, match=r"integers of shape \(6,\)"):
        bidirectional("gru", x, torch.tensor([1.0, 7, 3, 7, 2, 5]), weights(rnn))
    with pytest.raises(ValueError, match="do not fit inputs of 5 features"):
        bidirectional("lstm", x, lengths, weights(rnn))  # GRU weights given to the LSTM
    with pytest.raises(ValueError, match=r"\[batch >= 1, time >= 1, features\]"):
        bidirectional("gru", x[0], None, weights(rnn))
    with pytest.raises(ValueError, match="share one dtype"):
        bidirectional("gru", x.double(), lengths, weights(rnn))
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        bidirectional("rnn", x, lengths, weights(rnn))


@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 2.5e-7), (torch.float64, 1e-15)])
def test_the_layers_tanh_is_tanh_within_rounding(dtype, tolerance):
    """The layer computes tanh as 2 sigmoid(2x) - 1 (faster on the CPU); over the whole range, the infinities
    included, it stays within float rounding of the true tanh."""
    x = torch.cat((torch.linspace(-30, 30, 100_001, dtype=torch.float64),
                   torch.tensor([0.0, 1e-30, -1e-30, float("inf"), float("-inf")], dtype=torch.float64)))
    ours = tanh_(x.to(dtype).clone()).double()
    torch.testing.assert_close(ours, torch.tanh(x), rtol=0, atol=tolerance)
