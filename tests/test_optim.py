"""Our Adam: torch's numbers to the last bit until an entry is reset, a fresh start for a reset entry, exact state."""
from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from lopmodels import ModelSpec, build_model
from lopmodels.optim import Adam

LR = 0.01


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_gru() -> torch.nn.Module:
    return build_model("gru", ModelSpec("tokens", 3, hidden=4, embed=6, vocab_size=20), torch.Generator().manual_seed(0))


def batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randint(1, 20, (8, 7), generator=g), torch.randint(1, 8, (8,), generator=g),
             torch.randint(0, 3, (8,), generator=g)) for _ in range(count)]


def train(net: torch.nn.Module, optimizer: torch.optim.Optimizer, data) -> None:
    for tokens, lengths, labels in data:
        optimizer.zero_grad()
        F.cross_entropy(net(tokens, lengths), labels).backward()
        optimizer.step()


@pytest.mark.parametrize("weight_decay,decoupled", [(0.0, False), (1e-2, False), (1e-2, True)])
def test_equals_torch_adam_bit_for_bit(weight_decay, decoupled):
    """100 steps on a GRU: parameters of every shape, embedding rows that see no token in some batches."""
    ours_net, torch_net = tiny_gru(), tiny_gru()
    ours = Adam(ours_net.parameters(), lr=LR, weight_decay=weight_decay, decoupled=decoupled)
    reference = torch.optim.Adam(torch_net.parameters(), lr=LR, weight_decay=weight_decay,
                                 decoupled_weight_decay=decoupled)
    data = batches(100)
    train(ours_net, ours, data)
    train(torch_net, reference, data)
    for (name, a), b in zip(ours_net.named_parameters(), torch_net.parameters()):
        assert torch.equal(a, b), name
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(ours.state[a][key], reference.state[b][key]), (name, key)


def manual_run(optimizer: torch.optim.Optimizer, param: torch.Tensor, grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Step on fixed gradients (so every element's trajectory depends on its own gradients only)."""
    values = []
    for grad in grads:
        param.grad = grad.clone()
        optimizer.step()
        values.append(param.detach().clone())
    return values


def test_a_reset_entry_restarts_like_a_fresh_adam_and_the_others_go_on():
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(5, 3, generator=g) + 0.5 for _ in range(120)]
    start = torch.randn(5, 3, generator=g)
    ours_param = torch.nn.Parameter(start.clone())
    torch_param = torch.nn.Parameter(start.clone())
    ours, reference = Adam([ours_param], lr=LR), torch.optim.Adam([torch_param], lr=LR)
    manual_run(ours, ours_param, grads[:60])
    manual_run(reference, torch_param, grads[:60])
    at_reset = ours_param.detach().clone()

    ours.reset_entries(ours_param, 0, torch.tensor([3]))  # row 3 forgets
    assert not ours.state[ours_param]["exp_avg"][3].any() and not ours.state[ours_param]["exp_avg_sq"][3].any()
    after = manual_run(ours, ours_param, grads[60:])
    torch_after = manual_run(reference, torch_param, grads[60:])

    # every other entry continues exactly as torch's Adam
    others = torch.ones(5, dtype=torch.bool)
    others[3] = False
    assert torch.equal(after[-1][others], torch_after[-1][others])

    # row 3 follows a fresh Adam started at the reset, on the same gradients
    fresh_param = torch.nn.Parameter(at_reset[3].clone())
    fresh = torch.optim.Adam([fresh_param], lr=LR)
    fresh_after = manual_run(fresh, fresh_param, [grad[3] for grad in grads[60:]])
    torch.testing.assert_close(torch.stack([a[3] for a in after]), torch.stack(fresh_after), rtol=1e-6, atol=0)

    # its first step is a fresh Adam's first step, lr * g / (|g| + eps), not the ~3 lr of a per-tensor count
    first_step = (after[0][3] - at_reset[3]).abs()
    torch.testing.assert_close(first_step, torch.full((3,), LR), rtol=1e-5, atol=0)
    assert ours.state[ours_param]["element_step"][3].tolist() == [60.0] * 3
    assert ours.state[ours_param]["element_step"][0].tolist() == [120.0] * 3


def test_reset_along_columns_and_before_any_step():
    param = torch.nn.Parameter(torch.zeros(4, 6))
    optimizer = Adam([param], lr=LR)
    optimizer.reset_entries(param, 1, torch.tensor([0, 5]))  # no state yet: nothing to forget
    assert len(optimizer.state[param]) == 0
    manual_run(optimizer, param, [torch.ones(4, 6)] * 3)
    optimizer.reset_entries(param, 1, torch.tensor([0, 5]))
    steps = optimizer.state[param]["element_step"]
    assert steps[:, [0, 5]].eq(0).all() and steps[:, 1:5].eq(3).all()
    assert optimizer.state[param]["exp_avg"][:, [0, 5]].eq(0).all()
    assert optimizer.state[param]["exp_avg"][:, 1:5].ne(0).all()


def test_state_dict_round_trip_continues_bit_for_bit():
    """Save mid-run (after resets, through bytes), load into a new optimizer, and continue: same numbers."""
    net = tiny_gru()
    optimizer = Adam(net.parameters(), lr=LR, weight_decay=1e-3)
    data = batches(30)
    train(net, optimizer, data[:15])
    optimizer.reset_entries(net.rnn.weight_hh_l0, 0, torch.tensor([1, 5, 9]))
    optimizer.reset_entries(net.head.weight, 1, torch.tensor([2]))
    train(net, optimizer, data[15:20])

    buffer = io.BytesIO()
    torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    saved = torch.load(io.BytesIO(buffer.getvalue()))
    resumed_net = tiny_gru()
    resumed_net.load_state_dict(saved["net"])
    resumed = Adam(resumed_net.parameters(), lr=LR, weight_decay=1e-3)
    resumed.load_state_dict(saved["optimizer"])

    train(net, optimizer, data[20:])
    train(resumed_net, resumed, data[20:])
    for (name, a), b in zip(net.named_parameters(), resumed_net.parameters()):
        assert torch.equal(a, b), name
    assert torch.equal(optimizer.state[net.rnn.weight_hh_l0]["element_step"],
                       resumed.state[resumed_net.rnn.weight_hh_l0]["element_step"])


def test_per_element_path_without_a_reset_is_torch_adam():
    """Switching a tensor to per-element counts changes nothing by itself (an empty reset)."""
    net, reference_net = tiny_gru(), tiny_gru()
    ours, reference = Adam(net.parameters(), lr=LR), torch.optim.Adam(reference_net.parameters(), lr=LR)
    data = batches(40)
    train(net, ours, data[:10])
    train(reference_net, reference, data[:10])
    for param in net.parameters():
        ours.reset_entries(param, 0, torch.tensor([], dtype=torch.long))
    train(net, ours, data[10:])
    train(reference_net, reference, data[10:])
    for a, b in zip(net.parameters(), reference_net.parameters()):
        assert torch.equal(a, b)


def test_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="learning rate"):
        Adam(tiny_gru().parameters(), lr=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        Adam(tiny_gru().parameters(), weight_decay=-1.0)
