"""Diagnostics on tiny networks and representations whose answers are known by hand."""
from __future__ import annotations

import math

import pytest
import torch

from lopmodels import ModelSpec, build_model
from lopmodels.base import UnitSteps
from lopmodels.diagnostic_names import PROBE_DIAGNOSTICS
from lopmodels.diagnostics import (dead_fraction, effective_rank, gradient_norm, probe, saturated_fraction,
                                   stable_rank, weight_magnitude)
from tests.model_cases import MODEL_INPUTS


def mlp(hidden: int = 4):
    return build_model("mlp", ModelSpec("image", 10, hidden=hidden), torch.Generator().manual_seed(0))


def test_two_dead_units_of_eight():
    net = mlp(hidden=4)  # two layers of 4 ReLU units
    with torch.no_grad():
        for layer in net.hidden:
            layer.bias.fill_(10.0)  # every unit active on every input...
        net.hidden[0].weight[1].zero_()
        net.hidden[0].bias[1] = -1.0  # unit 1 of layer 0 outputs relu(-1) = 0 for every input
        net.hidden[1].weight[3].zero_()
        net.hidden[1].bias[3] = -0.5  # ...but these two
    inputs = torch.randn(64, 28, 28, generator=torch.Generator().manual_seed(1))
    activations = net.forward_units(inputs).activations
    assert dead_fraction(net, activations).item() == pytest.approx(2 / 8)
    steps = net.forward_units(inputs, steps=True).steps
    assert math.isnan(saturated_fraction(net, steps).item())  # an MLP has no tanh units


def test_saturation_is_measured_at_every_valid_step():
    net = build_model("gru", ModelSpec("tokens", 2, hidden=3, embed=2, vocab_size=5), torch.Generator().manual_seed(0))
    # [samples 2, steps 3, units 3]; sample 1's last step is padding
    forward = torch.tensor([[[0.995, 0.999, 0.999], [-0.995, 0.999, 0.98], [0.995, 0.999, 0.999]],
                            [[-0.995, 0.999, 0.999], [0.995, 0.999, 0.999], [0.0, 0.1, 0.999]]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    steps = UnitSteps({"rnn.forward": forward, "rnn.reverse": torch.full((2, 3, 3), 0.3)}, valid)
    # unit 0 alternates in sign but |h_t| > 0.99 at every step (its time-mean is near 0): saturated;
    # unit 1 is saturated at every valid step (its 0.1 is padding): saturated; unit 2 is at 0.98 once: not,
    # though its mean |h| over sample 0's steps, 0.9927, is above 0.99.
    # The reverse units never are: 2 of 6.
    assert saturated_fraction(net, steps).item() == pytest.approx(2 / 6)
    activity = {name: v.abs().mean(dim=1) for name, v in steps.values.items()}
    assert math.isnan(dead_fraction(net, activity).item())


def test_probe_counts_a_sign_alternating_saturated_unit():
    """A real GRU whose single unit per direction is tanh(30 x_t) = +-1 at each token, alternating in sign."""
    net = build_model("gru", ModelSpec("tokens", 2, hidden=1, embed=1, vocab_size=3), torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.embedding.weight[:, 0] = torch.tensor([0.0, 1.0, -1.0])  # padding, +1, -1
        for suffix in ("", "_reverse"):
            getattr(net.rnn, f"bias_ih_l0{suffix}")[1] = -1e3  # update gate 0: h_t = n_t = tanh(30 x_t)
            getattr(net.rnn, f"weight_ih_l0{suffix}")[2, 0] = 30.0
    tokens, lengths = torch.tensor([[1, 2, 1, 2], [2, 1, 0, 0]]), torch.tensor([4, 2])
    mean_state = net.forward_units(tokens, lengths, steps=True).steps.values["rnn.forward"][:, :2].mean(dim=1)
    assert mean_state.abs().max() < 1e-6  # the time-mean over the first two steps is 0
    assert probe(net, tokens, lengths)["saturated_fraction"].item() == 1.0  # both units saturated at every valid step


def test_effective_and_stable_rank_by_hand():
    two_equal = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    assert effective_rank(two_equal).item() == pytest.approx(2.0)
    assert stable_rank(two_equal).item() == pytest.approx(2.0)
    # singular values 3 and 1: p = (3/4, 1/4), erank = exp(-(.75 ln .75 + .25 ln .25)); srank = (9 + 1) / 9
    unequal = torch.diag(torch.tensor([3.0, 1.0]))
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert effective_rank(unequal).item() == pytest.approx(expected, rel=1e-6)
    assert stable_rank(unequal).item() == pytest.approx(10 / 9, rel=1e-6)


def test_weight_magnitude_and_gradient_norm():
    net = mlp(hidden=2)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(-0.5)
    assert weight_magnitude(net).item() == pytest.approx(0.5)
    for p in net.parameters():
        p.grad = torch.full_like(p, 2.0)
    total = sum(p.numel() for p in net.parameters())
    assert gradient_norm(net).item() == pytest.approx(math.sqrt(4.0 * total), rel=1e-6)


@pytest.mark.parametrize("name,kind", MODEL_INPUTS)
def test_probe_gives_every_value_for_every_model(name, kind):
    spec = ModelSpec(kind, 3, hidden=4, embed=3, vocab_size=9) if kind == "tokens" else ModelSpec(kind, 3, hidden=4)
    net = build_model(name, spec, torch.Generator().manual_seed(0))
    if kind == "tokens":
        inputs, lengths = torch.randint(1, 9, (5, 6)), torch.tensor([6, 2, 3, 1, 6])
    else:
        inputs, lengths = torch.randn(5, 28, 28), None
    values = probe(net, inputs, lengths)
    assert tuple(values) == PROBE_DIAGNOSTICS
    assert all(v.dim() == 0 and v.dtype == torch.float32 for v in values.values())
    assert 1.0 <= values["effective_rank"].item() <= 5.0  # effective rank of a 5-sample representation


def test_a_collapsed_representation_has_rank_zero_in_both_ranks():
    zeros = torch.zeros(5, 4)
    assert effective_rank(zeros).item() == 0.0 and stable_rank(zeros).item() == 0.0
    tiny = torch.zeros(5, 4)
    tiny[0, 0] = 1e-30  # not collapsed: one direction, rank 1
    assert effective_rank(tiny).item() == pytest.approx(1.0) and stable_rank(tiny).item() == pytest.approx(1.0)


def test_ranks_of_a_diverged_representation_are_nan_not_an_error():
    features = torch.tensor([[float("nan"), 1.0], [0.0, float("inf")]])
    assert math.isnan(effective_rank(features).item()) and math.isnan(stable_rank(features).item())
