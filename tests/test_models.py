"""Models: every unit map matches its model's real parameters; the recurrent readouts and unit activities."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from lopmodels import ModelSpec, build_model
from lopmodels.catalog import MODEL_INFO
from lopmodels.errors import ConfigError
from tests.model_cases import MODEL_INPUTS, MODEL_READOUTS

SPECS = {
    "image": ModelSpec("image", num_classes=10, hidden=5),
    "tokens": ModelSpec("tokens", num_classes=3, hidden=4, embed=6, vocab_size=20),
}
RECURRENT_INPUTS = [(name, kind) for name, kind in MODEL_INPUTS if MODEL_INFO[name].recurrent]
RECURRENT_ON_TOKENS = [name for name, kind in RECURRENT_INPUTS if kind == "tokens"]


def make(name: str, kind: str, seed: int = 0, readout: str = "state"):
    spec = dataclasses.replace(SPECS[kind], readout=readout)
    return build_model(name, spec, torch.Generator().manual_seed(seed))


def sample_inputs(kind: str, batch: int = 6):
    g = torch.Generator().manual_seed(1)
    if kind == "image":
        return torch.randn(batch, 28, 28, generator=g), None
    lengths = torch.tensor([1, 7, 3, 7, 2, 5][:batch])
    tokens = torch.randint(1, 20, (batch, 7), generator=g)
    tokens[torch.arange(7)[None] >= lengths[:, None]] = 0
    return tokens, lengths


@pytest.mark.parametrize("name,kind", MODEL_INPUTS)
def test_unit_map_partitions_the_parameters_it_names(name, kind):
    """Each slice names a real parameter; over all units, incoming rows and outgoing columns are covered exactly once."""
    net = make(name, kind)
    params = dict(net.named_parameters())
    for layer in net.unit_layers():
        units = torch.arange(layer.size)
        for piece in layer.slices:
            assert piece.param in params, piece.param
            index = piece.indices(units)
            assert int(index.max()) < params[piece.param].shape[piece.dim]
            assert len(set(index.tolist())) == index.numel(), "two units own the same entry"
        for piece in layer.weights_in + layer.biases_in:
            # a unit's incoming slices cover the whole gate dimension of their own parameter
            assert piece.indices(units).numel() == params[piece.param].shape[piece.dim]
    # the head's input columns are split between the unit layers that feed it
    head_cols = [piece.indices(torch.arange(l.size)) for l in net.unit_layers() for piece in l.weights_out
                 if piece.param == "head.weight"]
    assert sorted(torch.cat(head_cols).tolist()) == list(range(params["head.weight"].shape[1]))


@pytest.mark.parametrize("name,kind,readout", MODEL_READOUTS)
def test_forward_units_agrees_with_forward(name, kind, readout):
    """Same logits as `forward`, computed from the features; per-step values only when asked for."""
    net = make(name, kind, readout=readout)
    inputs, lengths = sample_inputs(kind)
    out = net.forward_units(inputs, lengths)
    assert out.logits.shape == (6, SPECS[kind].num_classes)
    assert torch.equal(out.logits, net(inputs, lengths))
    assert torch.equal(out.logits, net.head(out.features))  # the features are the classifier's input
    assert set(out.activations) == {layer.name for layer in net.unit_layers()}
    for layer in net.unit_layers():
        assert out.activations[layer.name].shape == (6, layer.size)
        assert out.activations[layer.name].min() >= 0  # an activity is a mean magnitude
    assert out.steps is None
    steps = net.forward_units(inputs, lengths, steps=True).steps
    assert set(steps.values) == set(out.activations)
    for layer in net.unit_layers():
        assert steps.values[layer.name].shape == (*steps.valid.shape, layer.size)
    if lengths is not None:  # a step is valid exactly when it reads one of the sample's tokens
        assert steps.valid.sum(dim=1).tolist() == lengths.tolist()


@pytest.mark.parametrize("name", RECURRENT_ON_TOKENS)
def test_padding_does_not_change_the_answer(name):
    """A sentence alone and the same sentence inside a longer padded batch give the same logits and unit activations."""
    net = make(name, "tokens")
    tokens, lengths = sample_inputs("tokens")
    batched = net.forward_units(tokens, lengths)
    for i in range(len(lengths)):
        alone = tokens[i : i + 1, : lengths[i]]
        single = net.forward_units(alone, lengths[i : i + 1])
        torch.testing.assert_close(single.logits[0], batched.logits[i], rtol=0, atol=1e-6)
        for key in single.activations:
            torch.testing.assert_close(single.activations[key][0], batched.activations[key][i], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", RECURRENT_ON_TOKENS)
def test_readout_is_forward_last_token_and_backward_first(name):
    """Independent reference: run the cell by hand over the true tokens in each direction."""
    net = make(name, "tokens")
    tokens, lengths = sample_inputs("tokens")
    features = net.forward_units(tokens, lengths).features
    rnn = net.rnn
    for i in range(len(lengths)):
        x = net.embedding(tokens[i, : lengths[i]])
        cell = type(rnn)(rnn.input_size, rnn.hidden_size, batch_first=True)  # one direction, unpadded
        for suffix, sequence, part in (("", x, slice(0, 4)), ("_reverse", x.flip(0), slice(4, 8))):
            with torch.no_grad():
                for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, f"{p}_l0").copy_(getattr(rnn, f"{p}_l0{suffix}"))
            out, _ = cell(sequence[None])
            torch.testing.assert_close(out[0, -1], features[i, part], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,kind", RECURRENT_INPUTS)
def test_last_position_reads_out_minus_one_of_the_unpacked_padded_run(name, kind):
    """The reference's readout: an unpacked torch module with the same weights, run by hand over the padded batch."""
    net = make(name, kind, readout="last-position")
    inputs, lengths = sample_inputs(kind)
    reference = type(net.rnn)(net.rnn.input_size, net.rnn.hidden_size, batch_first=True, bidirectional=True)
    reference.load_state_dict(net.rnn.state_dict())
    x = inputs if net.embedding is None else net.embedding(inputs)
    out, _ = reference(x)
    forward = net.forward_units(inputs, lengths)
    torch.testing.assert_close(forward.features, out[:, -1], rtol=0, atol=1e-6)
    torch.testing.assert_close(forward.logits, net.head(out[:, -1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", RECURRENT_ON_TOKENS)
def test_last_position_differs_from_state_by_exactly_the_padding(name):
    """Its forward half has read the padding as tokens, its backward half one (padding) token; nothing else differs."""
    state, last = make(name, "tokens"), make(name, "tokens", readout="last-position")  # same seed: same weights
    tokens, lengths = sample_inputs("tokens")
    width = tokens.shape[1]
    ours, theirs = state.forward_units(tokens, lengths).features, last.forward_units(tokens, lengths).features
    padding_as_tokens = state.forward_units(tokens, torch.full_like(lengths, width)).features
    last_token_only = state.forward_units(tokens[:, -1:], torch.ones_like(lengths)).features
    torch.testing.assert_close(theirs[:, :4], padding_as_tokens[:, :4], rtol=0, atol=1e-6)
    torch.testing.assert_close(theirs[:, 4:], last_token_only[:, 4:], rtol=0, atol=1e-6)
    full = lengths == width  # samples 1 and 3: no padding, so the forward halves agree
    assert full.tolist() == [False, True, False, True, False, False]
    torch.testing.assert_close(theirs[full, :4], ours[full, :4], rtol=0, atol=1e-6)
    assert (theirs[full, 4:] - ours[full, 4:]).abs().min() > 1e-4  # backward: one token read against all
    assert (theirs[~full, :4] - ours[~full, :4]).abs().amax(dim=1).min() > 1e-4  # padding was read


def alternating_net(name: str, readout: str, scale: float = 1.0):
    """One unit per direction whose state depends on the current token only: h_t = f(scale * x_t).

    GRU: update gate z = sigmoid(-1e3) = 0 and no recurrent weights, so h_t = n_t = tanh(scale * x_t).
    LSTM: forget gate 0, input and output gates 1, so c_t = tanh(scale * x_t) and h_t = tanh(c_t).
    Tokens embed to x = 0.5 (padding, nonzero so that counting it would show), +1, -2: tokens 1, 2, 1, 2
    make the unit's sign alternate.
    """
    spec = ModelSpec("tokens", num_classes=2, hidden=1, embed=1, vocab_size=3, readout=readout)
    net = build_model(name, spec, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.embedding.weight[:, 0] = torch.tensor([0.5, 1.0, -2.0])
        gate_biases = {"gru": {1: -1e3}, "lstm": {0: 1e3, 1: -1e3, 3: 1e3}}[name]  # z; i, f, o
        candidate = {"gru": 2, "lstm": 2}[name]  # n; g
        for suffix in ("", "_reverse"):
            for row, value in gate_biases.items():
                getattr(net.rnn, f"bias_ih_l0{suffix}")[row] = value
            getattr(net.rnn, f"weight_ih_l0{suffix}")[candidate, 0] = scale
    return net


@pytest.mark.parametrize("readout", ["state", "last-position"])
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_activity_is_the_mean_magnitude_over_valid_steps(name, readout):
    net = alternating_net(name, readout)
    tokens, lengths = torch.tensor([[1, 2, 1, 2], [2, 1, 0, 0]]), torch.tensor([4, 2])
    f = {"gru": math.tanh, "lstm": lambda x: math.tanh(math.tanh(x))}[name]
    # sample 0: h = f(1), f(-2), f(1), f(-2); sample 1: f(-2), f(1), then padding (not counted)
    expected = torch.tensor([(2 * f(1) + 2 * f(2)) / 4, (f(2) + f(1)) / 2])
    forward = net.forward_units(tokens, lengths)
    for direction in ("rnn.forward", "rnn.reverse"):  # each step's state depends on its token only
        torch.testing.assert_close(forward.activations[direction][:, 0], expected, rtol=1e-6, atol=0)
    # |mean h| would be (2 f(2) - 2 f(1)) / 4 for sample 0: well below its mean magnitude
    assert abs(2 * f(1) - 2 * f(2)) / 4 < expected[0] / 5


def test_bad_readouts_are_config_errors():
    with pytest.raises(ConfigError, match="unknown readout 'last'; choose one of: last-position, state"):
        ModelSpec("image", num_classes=10, hidden=5, readout="last")
    with pytest.raises(ConfigError, match="model 'mlp' has no time steps"):
        make("mlp", "image", readout="last-position")


def test_mlp_refuses_tokens():
    with pytest.raises(ConfigError, match="images only"):
        make("mlp", "tokens")


def test_init_uses_the_given_generator_only():
    a, b = make("gru", "tokens", seed=3), make("gru", "tokens", seed=3)
    torch.manual_seed(123)  # the global RNG must not matter
    c = make("gru", "tokens", seed=3)
    for (_, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(pa, pb) and torch.equal(pa, pc)
    assert not torch.equal(next(make("gru", "tokens", seed=4).parameters()), next(a.parameters()))
