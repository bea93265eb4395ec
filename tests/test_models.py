"""Models: every unit map matches its model's real parameters; the recurrent readout ignores padding."""
from __future__ import annotations

import pytest
import torch

from lopmodels import MODELS, ModelSpec, build_model
from lopmodels.registry import ConfigError

SPECS = {
    "image": ModelSpec("image", num_classes=10, hidden=5),
    "tokens": ModelSpec("tokens", num_classes=3, hidden=4, embed=6, vocab_size=20),
}
VALID = [(m, k) for m in MODELS.names() for k in SPECS if not (m == "mlp" and k == "tokens")]


def make(name: str, kind: str, seed: int = 0):
    return build_model(name, SPECS[kind], torch.Generator().manual_seed(seed))


def sample_inputs(kind: str, batch: int = 6):
    g = torch.Generator().manual_seed(1)
    if kind == "image":
        return torch.randn(batch, 28, 28, generator=g), None
    lengths = torch.tensor([1, 7, 3, 7, 2, 5][:batch])
    tokens = torch.randint(1, 20, (batch, 7), generator=g)
    tokens[torch.arange(7)[None] >= lengths[:, None]] = 0
    return tokens, lengths


@pytest.mark.parametrize("name,kind", VALID)
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


@pytest.mark.parametrize("name,kind", VALID)
def test_forward_units_shapes(name, kind):
    net = make(name, kind)
    inputs, lengths = sample_inputs(kind)
    out = net.forward_units(inputs, lengths)
    assert out.logits.shape == (6, SPECS[kind].num_classes)
    assert torch.equal(out.logits, net(inputs, lengths))
    assert set(out.activations) == {layer.name for layer in net.unit_layers()}
    for layer in net.unit_layers():
        assert out.activations[layer.name].shape == (6, layer.size)
    assert out.features.shape[0] == 6


@pytest.mark.parametrize("name", ["lstm", "gru"])
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


@pytest.mark.parametrize("name", ["lstm", "gru"])
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
