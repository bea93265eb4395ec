"""Mitigations against first principles on tiny networks: which entries a replacement touches, that the
output is unchanged by it, CBP's rate and utilities, ReDo's dormancy, the shrink-perturb, noise and
L2-Init formulas, exact state round trips, bad values, and every mitigation inside the real training loop."""
from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F

from lopmodels import MITIGATIONS, ConfigError, HookContext, ModelSpec, build_mitigation, build_model
from lopmodels.catalog import MODEL_INFO
from lopmodels.optim import Adam
from lopmodels.step import train_step
from lopmodels.units import outgoing_magnitude, replace_units
from tests.model_cases import MODEL_INPUTS

IMAGE = ModelSpec("image", 10, hidden=5)


pytestmark = pytest.mark.usefixtures("one_thread")
TOKENS = ModelSpec("tokens", 3, hidden=4, embed=6, vocab_size=20)
SPECS = {"image": IMAGE, "tokens": TOKENS}
# id -> (model, spec): every registered model on every input kind it reads ("mlp", "gru-tokens", ...)
NETS = {(model if len(MODEL_INFO[model].reads) == 1 else f"{model}-{kind}"): (model, SPECS[kind])
        for model, kind in MODEL_INPUTS}

# settings under which each mitigation acts within a few steps; a new entry runs with its defaults
ACTIVE = {
    "cbp": {"replacement_rate": 0.3, "maturity_threshold": 2},
    "redo": {"tau": 0.9, "every_steps": 3, "at_task_end": True},
    "noise": {"sigma": 1e-3, "weight_decay": 1e-3},
    "l2": {"weight_decay": 1e-2},
    "l2-init": {"strength": 0.1},
}
ARMS = [(name, ACTIVE.get(name, {})) for name in MITIGATIONS.names()] + [
    ("shrink-perturb", {"every": "step", "shrink": 0.999, "sigma": 1e-3}),
    ("l2", {"weight_decay": 1e-2, "decoupled": True}),
]
ARM_IDS = [f"{name}{'-' + '-'.join(f'{k}={v}' for k, v in args.items()) if args else ''}" for name, args in ARMS]


def build(net_id: str, seed: int = 0):
    model, spec = NETS[net_id]
    return build_model(model, spec, torch.Generator().manual_seed(seed))


def batch(net_id: str, seed: int = 1, repeat: int = 1) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """6 * repeat samples; token batches have varied lengths and padding (id 0) after each sequence's end."""
    g = torch.Generator().manual_seed(seed)
    spec = NETS[net_id][1]
    size = 6 * repeat
    labels = torch.randint(0, spec.num_classes, (size,), generator=g)
    if spec.input_kind == "image":
        return torch.randn(size, 28, 28, generator=g), None, labels
    lengths = torch.tensor([7, 2, 5, 1, 4, 7]).repeat(repeat)
    tokens = torch.randint(1, spec.vocab_size, (size, 7), generator=g)
    tokens[torch.arange(7)[None, :] >= lengths[:, None]] = 0
    return tokens, lengths, labels


def expected_entries(net_id: str, net, layer: str, j: int) -> tuple[dict, dict]:
    """(every entry unit j of `layer` owns, the entries of those that must end at zero), written out by hand."""
    params = dict(net.named_parameters())
    owned = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in params.items()}
    zero = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in params.items()}
    if layer.startswith("hidden."):  # MLP: row j and bias j of its layer, column j of the next layer
        i = int(layer.split(".")[1])
        following = f"hidden.{i + 1}.weight" if f"hidden.{i + 1}.weight" in params else "head.weight"
        owned[f"hidden.{i}.weight"][j, :] = True
        for masks in (owned, zero):
            masks[f"hidden.{i}.bias"][j] = True
            masks[following][:, j] = True
        return owned, zero
    H, G = net.hidden_size, net.gates  # the model's gate blocks: LSTM (i, f, g, o), GRU (r, z, n)
    direction = 0 if layer == "rnn.forward" else 1
    suffix = "" if direction == 0 else "_reverse"
    rows = [g * H + j for g in range(G)]  # one row per gate block
    for kind in ("weight_ih", "weight_hh"):
        owned[f"rnn.{kind}_l0{suffix}"][rows, :] = True
    for masks in (owned, zero):
        for kind in ("bias_ih", "bias_hh"):
            masks[f"rnn.{kind}_l0{suffix}"][rows] = True
        masks[f"rnn.weight_hh_l0{suffix}"][:, j] = True  # the unit's state feeding every gate of its direction
        masks["head.weight"][:, direction * H + j] = True  # the classifier reads [h_forward, h_backward]
    return owned, zero


def init_bound(net_id: str, name: str) -> float:
    """nn.Linear / nn.LSTM / nn.GRU defaults: U(-1/sqrt(fan_in), ...) and U(-1/sqrt(hidden), ...)."""
    model, spec = NETS[net_id]
    if not MODEL_INFO[model].recurrent:  # an MLP's layers
        fan_in = 28 * 28 if name.startswith("hidden.0") else spec.hidden
        return 1 / math.sqrt(fan_in)
    return 1 / math.sqrt(spec.hidden)


def train_steps(net, optimizer, net_id: str, steps: int) -> None:
    for k in range(steps):
        inputs, lengths, labels = batch(net_id, seed=100 + k)
        optimizer.zero_grad()
        F.cross_entropy(net(inputs, lengths), labels).backward()
        optimizer.step()


@pytest.mark.parametrize("net_id", NETS)
def test_replacing_one_unit_touches_exactly_its_entries(net_id):
    """Per layer of units: exactly the unit's entries change, biases and outgoing weights end at zero,
    incoming weights come from the init distribution, the output equals that of the network with the
    unit silenced, and the optimizer state of exactly those entries is reset (after 3 Adam steps)."""
    base = build(net_id)
    base_optimizer = Adam(base.parameters(), lr=0.01)
    train_steps(base, base_optimizer, net_id, 3)
    inputs, lengths, _ = batch(net_id)
    layers = base.unit_layers()
    recurrent = MODEL_INFO[NETS[net_id][0]].recurrent
    assert [layer.name for layer in layers] == (["rnn.forward", "rnn.reverse"] if recurrent else ["hidden.0", "hidden.1"])
    for layer in layers:
        j = layer.size - 2  # not unit 0, so a missing offset would show
        net, optimizer = copy.deepcopy((base, base_optimizer))
        before = {name: p.detach().clone() for name, p in net.named_parameters()}
        state_before = {name: {k: v.clone() for k, v in optimizer.state[p].items()} for name, p in net.named_parameters()}
        owned, zero = expected_entries(net_id, net, layer.name, j)

        silenced = copy.deepcopy(net)
        with torch.no_grad():
            for name, p in silenced.named_parameters():
                p[zero[name]] = 0.0  # the unit's outgoing weights (and biases) removed by hand
        expected_output = silenced(inputs, lengths)

        replace_units(net, layer, torch.tensor([j]), torch.Generator().manual_seed(7), optimizer)

        for name, p in net.named_parameters():
            after = p.detach()
            assert torch.equal(after != before[name], owned[name]), f"{layer.name}: {name}"
            assert after[zero[name]].eq(0).all(), f"{layer.name}: {name}"
            redrawn = owned[name] & ~zero[name]
            assert after[redrawn].abs().le(init_bound(net_id, name)).all(), f"{layer.name}: {name}"
            state = optimizer.state[p]
            for key in ("exp_avg", "exp_avg_sq"):
                assert state[key][owned[name]].eq(0).all(), f"{layer.name}: {name} {key}"
                assert torch.equal(state[key][~owned[name]], state_before[name][key][~owned[name]])
            if owned[name].any():
                assert state["element_step"][owned[name]].eq(0).all() and state["element_step"][~owned[name]].eq(3).all()
            else:
                assert "element_step" not in state, f"{layer.name}: {name} was not touched"
        torch.testing.assert_close(net(inputs, lengths), expected_output, rtol=0, atol=1e-6)


def context(net, optimizer=None, generator=None, task: int = 0, activations=None) -> HookContext:
    return HookContext(net, optimizer or Adam(net.parameters()), generator or torch.Generator().manual_seed(3),
                       task=task, activations=activations)


def test_cbp_utility_follows_the_formula_by_hand():
    """u <- d u + (1 - d) mean|h| sum|w_out| with d = 0.5, one layer of two units, numbers worked out by hand."""
    net = build_model("mlp", ModelSpec("image", 2, hidden=2, hidden_layers=1), torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.head.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))  # sum |w_out|: unit 0 -> 4, unit 1 -> 2.5
    cbp = build_mitigation("cbp", {"decay_rate": 0.5, "replacement_rate": 0.0})
    cbp.after_step(context(net, activations={"hidden.0": torch.tensor([[1.0, 0.0], [3.0, 2.0]])}))
    # mean |h| = (2, 1); contribution (8, 2.5); u = 0.5 * (8, 2.5)
    assert cbp.state_dict()["layers"]["hidden.0"]["utility"].tolist() == [4.0, 1.25]
    cbp.after_step(context(net, activations={"hidden.0": torch.tensor([[0.0, -4.0], [0.0, 0.0]])}))
    # mean |h| = (0, 2); contribution (0, 5); u = 0.5 * (4, 1.25) + 0.5 * (0, 5)
    assert cbp.state_dict()["layers"]["hidden.0"]["utility"].tolist() == [2.0, 3.125]


def test_cbp_replaces_the_rate_of_mature_units_lowest_utility_first():
    """600 steps, two layers of 40 units: at every step the replacements made so far trail the sum of
    replacement_rate * (mature units) by less than one unit per layer (so the long-run count matches
    the rate, and a step may replace none); only mature units go, the lowest utilities first; the
    utility of every other unit follows the formula."""
    rate, maturity, decay = 0.01, 20, 0.9
    net = build_model("mlp", ModelSpec("image", 10, hidden=40), torch.Generator().manual_seed(0))
    cbp = build_mitigation("cbp", {"replacement_rate": rate, "maturity_threshold": maturity, "decay_rate": decay})
    optimizer, generator = Adam(net.parameters()), torch.Generator().manual_seed(1)
    g = torch.Generator().manual_seed(2)
    owed = {layer.name: 0.0 for layer in net.unit_layers()}
    replaced = {layer.name: 0 for layer in net.unit_layers()}
    idle_steps_with_mature_units = 0
    for step in range(1, 601):
        activations = {layer.name: torch.rand(8, layer.size, generator=g) for layer in net.unit_layers()}
        magnitude = {layer.name: outgoing_magnitude(net, layer) for layer in net.unit_layers()}
        before = cbp.state_dict()["layers"]
        cbp.after_step(context(net, optimizer, generator, activations=activations))
        after = cbp.state_dict()["layers"]
        for layer in net.unit_layers():
            name, size = layer.name, layer.size
            birth = before[name]["birth"] if name in before else torch.zeros(size, dtype=torch.long)
            utility = before[name]["utility"] if name in before else torch.zeros(size)
            age = step - birth
            mature = age > maturity
            new = after[name]["birth"] == step
            assert not (new & ~mature).any(), "an immature unit was replaced"
            expected = decay * utility + (1 - decay) * activations[name].abs().mean(0) * magnitude[name]
            torch.testing.assert_close(after[name]["utility"][~new], expected[~new])
            assert after[name]["utility"][new].eq(0).all()
            if new.any():
                corrected = expected / (1 - decay ** age.float())
                assert corrected[new].max() <= corrected[mature & ~new].min()
            elif mature.any():
                idle_steps_with_mature_units += 1
            owed[name] += rate * int(mature.sum())
            replaced[name] += int(new.sum())
            assert -1e-9 <= owed[name] - replaced[name] < 1 + 1e-9, (step, name)
    assert all(count >= 5 for count in replaced.values())
    assert idle_steps_with_mature_units > 0  # never "at least one per step"


def test_cbp_never_replaces_before_maturity():
    net = build("gru-tokens")
    cbp = build_mitigation("cbp", {"replacement_rate": 0.9, "maturity_threshold": 30})
    inputs, lengths, _ = batch("gru-tokens")
    ctx = context(net, activations=net.forward_units(inputs, lengths).activations)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    for _ in range(30):
        cbp.after_step(ctx)
    assert all(torch.equal(p, before[name]) for name, p in net.named_parameters())
    cbp.after_step(ctx)  # age 31 > 30: now every unit is mature and 0.9 * 4 units per direction are owed
    assert not torch.equal(net.rnn.weight_ih_l0, before["rnn.weight_ih_l0"])
    assert not torch.equal(net.rnn.weight_ih_l0_reverse, before["rnn.weight_ih_l0_reverse"])


def dormant_net(net_id: str):
    """A network with one unit silenced by hand: a ReLU unit with a huge negative bias (MLP; the other
    units get a positive bias, as ReLU units dead at initialisation are common in layers this small),
    or a GRU forward unit whose update gate is stuck at 1, so its state never leaves h_0 = 0."""
    net = build(net_id)
    with torch.no_grad():
        if net_id == "mlp":
            for layer in net.hidden:
                layer.bias.fill_(0.5)
            net.hidden[0].bias[2] = -1e3
            return net, "hidden.0", 2
        net.rnn.bias_ih_l0[net.hidden_size + 1] = 1e3  # z gate of forward unit 1
        return net, "rnn.forward", 1


@pytest.mark.parametrize("net_id", ["mlp", "gru-tokens"])
def test_redo_recycles_a_dormant_unit_and_leaves_active_ones(net_id):
    net, layer_name, j = dormant_net(net_id)
    inputs, lengths, _ = batch(net_id, repeat=10)
    activations = net.forward_units(inputs, lengths).activations
    redo = build_mitigation("redo", {"every_steps": 1})
    for name, h in activations.items():  # the premise: only the silenced unit is dormant
        score = h.abs().mean(0) / h.abs().mean()
        expected = torch.zeros_like(score, dtype=torch.bool)
        if name == layer_name:
            expected[j] = True
        assert torch.equal(score <= redo.tau, expected)
    owned, _ = expected_entries(net_id, net, layer_name, j)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    redo.after_step(context(net, activations=activations))
    for name, p in net.named_parameters():
        assert torch.equal(p.detach() != before[name], owned[name]), name


def test_redo_acts_on_every_nth_step_and_at_task_end():
    net, _, _ = dormant_net("mlp")
    inputs, lengths, _ = batch("mlp")
    ctx = context(net, activations=net.forward_units(inputs, lengths).activations)
    periodic = build_mitigation("redo", {"every_steps": 3})
    before = net.hidden[0].weight.detach().clone()
    periodic.after_step(ctx), periodic.after_step(ctx)
    periodic.on_task_end(ctx)  # at_task_end is off
    assert torch.equal(net.hidden[0].weight, before)
    periodic.after_step(ctx)
    assert not torch.equal(net.hidden[0].weight, before)

    net, _, _ = dormant_net("mlp")
    before = net.hidden[0].weight.detach().clone()
    ctx = context(net, activations=net.forward_units(inputs, lengths).activations)
    at_end = build_mitigation("redo", {"every_steps": 1000, "at_task_end": True})
    at_end.after_step(ctx)
    assert torch.equal(net.hidden[0].weight, before)
    at_end.on_task_end(ctx)  # uses the last step's activations
    assert not torch.equal(net.hidden[0].weight, before)


def cloned(generator: torch.Generator) -> torch.Generator:
    twin = torch.Generator()
    twin.set_state(generator.get_state())
    return twin


@pytest.mark.parametrize("every", ["task", "step"])
def test_shrink_perturb_formula_at_the_right_moments(every):
    net = build("gru-tokens")
    sp = build_mitigation("shrink-perturb", {"shrink": 0.7, "sigma": 0.05, "every": every})
    generator = torch.Generator().manual_seed(11)
    ctx = context(net, generator=generator)

    def unchanged_by(hook) -> bool:
        before = copy.deepcopy(net.state_dict())
        hook()
        return all(torch.equal(net.state_dict()[k], v) for k, v in before.items())

    def follows_formula(hook) -> bool:
        fresh = net.fresh_parameters(cloned(generator))  # the w_fresh the hook is about to draw
        expected = {name: 0.7 * p.detach() + 0.05 * fresh[name] for name, p in net.named_parameters()}
        hook()
        return all(torch.allclose(p, expected[name], rtol=1e-6, atol=1e-7) for name, p in net.named_parameters())

    ctx.task = 0
    assert unchanged_by(lambda: sp.on_task_start(ctx))  # the first task starts from a fresh init anyway
    if every == "task":
        assert unchanged_by(lambda: sp.after_step(ctx))
        ctx.task = 1
        assert follows_formula(lambda: sp.on_task_start(ctx))
    else:
        assert follows_formula(lambda: sp.after_step(ctx))
        assert follows_formula(lambda: sp.after_step(ctx))
        ctx.task = 1
        assert unchanged_by(lambda: sp.on_task_start(ctx))


def test_noise_adds_gaussian_noise_after_every_step_and_sets_coupled_decay():
    net = build("mlp")
    noise = build_mitigation("noise", {"sigma": 0.01, "weight_decay": 1e-5})
    assert noise.optimizer_options() == {"weight_decay": 1e-5}
    generator = torch.Generator().manual_seed(4)
    twin = cloned(generator)
    expected = {name: p.detach() + 0.01 * torch.randn(p.shape, generator=twin) for name, p in net.named_parameters()}
    noise.after_step(context(net, generator=generator))
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=0, atol=1e-7)


@pytest.mark.parametrize("decoupled", [False, True])
def test_l2_is_torch_adams_weight_decay(decoupled):
    ours_net, torch_net = build("mlp"), build("mlp")
    options = build_mitigation("l2", {"weight_decay": 1e-3, "decoupled": decoupled}).optimizer_options()
    ours = Adam(ours_net.parameters(), lr=0.01, **options)
    reference = torch.optim.Adam(torch_net.parameters(), lr=0.01, weight_decay=1e-3, decoupled_weight_decay=decoupled)
    train_steps(ours_net, ours, "mlp", 5)
    train_steps(torch_net, reference, "mlp", 5)
    assert all(torch.equal(a, b) for a, b in zip(ours_net.parameters(), torch_net.parameters()))


def test_l2_init_gradient_is_twice_strength_times_distance_from_init():
    net = build("lstm-tokens")
    l2_init = build_mitigation("l2-init", {"strength": 0.3})
    l2_init.on_train_start(context(net))
    initial = {name: p.detach().clone() for name, p in net.named_parameters()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(5)))
    net.zero_grad()
    l2_init.penalty(context(net)).backward()
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, 2 * 0.3 * (p.detach() - initial[name]))


def run_tasks(net, optimizer, mitigation, generator, net_id: str, tasks: range, steps: int = 3) -> None:
    """A miniature training loop: `trainables.loop`'s step and hooks on fixed batches."""
    for task in tasks:
        mitigation.on_task_start(HookContext(net, optimizer, generator, task=task))
        for k in range(steps):
            inputs, lengths, labels = batch(net_id, seed=1000 * task + k)
            train_step(HookContext(net, optimizer, generator, task=task), mitigation, inputs, lengths, labels)
        mitigation.on_task_end(HookContext(net, optimizer, generator, task=task))


@pytest.mark.parametrize("name,args", ARMS, ids=ARM_IDS)
def test_state_round_trip_resumes_exactly(name, args):
    """Two tasks, everything saved through bytes and loaded into new objects, two more tasks: the same
    numbers as never stopping (GRU on tokens)."""
    net_id = "gru-tokens"

    def start():
        net = build(net_id)
        mitigation = build_mitigation(name, args)
        optimizer = Adam(net.parameters(), lr=0.01, **mitigation.optimizer_options())
        return net, optimizer, mitigation, torch.Generator().manual_seed(9)

    net, optimizer, mitigation, generator = start()
    mitigation.on_train_start(HookContext(net, optimizer, generator))
    run_tasks(net, optimizer, mitigation, generator, net_id, range(2))
    buffer = io.BytesIO()
    torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(), "mitigation": mitigation.state_dict(),
                "generator": generator.get_state()}, buffer)
    saved = torch.load(io.BytesIO(buffer.getvalue()))
    run_tasks(net, optimizer, mitigation, generator, net_id, range(2, 4))

    resumed_net, resumed_optimizer, resumed_mitigation, resumed_generator = start()
    resumed_net.load_state_dict(saved["net"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed_mitigation.load_state_dict(saved["mitigation"])
    resumed_generator.set_state(saved["generator"])
    run_tasks(resumed_net, resumed_optimizer, resumed_mitigation, resumed_generator, net_id, range(2, 4))

    for (key, a), b in zip(net.named_parameters(), resumed_net.parameters()):
        assert torch.equal(a, b), key
    assert repr(mitigation.state_dict()) == repr(resumed_mitigation.state_dict())


BAD_VALUES = {  # mitigation -> field -> a value outside its range
    "l2": {"weight_decay": 0.0, "decoupled": "sometimes"},
    "shrink-perturb": {"shrink": 0.0, "sigma": -0.1, "every": "epoch"},
    "noise": {"sigma": -1e-5, "weight_decay": -1.0},
    "cbp": {"replacement_rate": 1.0, "decay_rate": -0.1, "maturity_threshold": -1},
    "redo": {"tau": -0.5, "every_steps": 0, "at_task_end": "never"},
    "l2-init": {"strength": 0.0},
}


def test_every_field_has_a_bad_value_case():
    """So that a new mitigation's ranges get checked: list one bad value per field above."""
    for name in MITIGATIONS.names():
        fields = set(build_mitigation(name).fields())
        assert fields == set(BAD_VALUES.get(name, {})), name


@pytest.mark.parametrize("name,field,value", [(n, f, v) for n, fs in BAD_VALUES.items() for f, v in fs.items()])
def test_bad_values_give_a_one_line_error_naming_the_field(name, field, value):
    with pytest.raises(ConfigError) as error:
        build_mitigation(name, {field: value})
    message = str(error.value)
    assert field in message and name in message and "\n" not in message


def test_command_line_strings_are_coerced_and_unknown_fields_rejected():
    cbp = build_mitigation("cbp", {"maturity_threshold": "5", "replacement_rate": "1e-2"})
    assert (cbp.maturity_threshold, cbp.replacement_rate) == (5, 0.01)
    assert build_mitigation("redo", {"at_task_end": "true"}).at_task_end is True
    with pytest.raises(ConfigError, match="maturity_threshold"):
        build_mitigation("cbp", {"maturity_threshold": 2.5})
    with pytest.raises(ConfigError, match="valid fields: decay_rate, maturity_threshold, replacement_rate"):
        build_mitigation("cbp", {"rate": 0.1})


# --- inside the real training loop (trainables.loop), on small synthetic datasets -------------------

def loop_cases() -> list[tuple[str, str]]:
    """Every valid model x stream (the MLP reads images only)."""
    from trainables.streams import STREAMS, reads
    return [(m, s) for m in MODEL_INFO.names() for s in STREAMS.names() if reads(m, s)]


@pytest.fixture(scope="module")
def synthetic():
    """MNIST-shaped images and token sequences of every stream language, a few per class, seeded."""
    from trainables.data import Dataset, Split
    from trainables.streams import STREAMS

    g = torch.Generator().manual_seed(0)

    def images(per_class: int) -> Split:
        labels = torch.arange(10).repeat(per_class)
        return Split(torch.randn(len(labels), 28, 28, generator=g), labels)

    languages = sorted({c for spec in STREAMS.names() if STREAMS[spec].is_language for c in STREAMS[spec].classes})

    def sentences(per_class: int) -> Split:
        labels = torch.arange(len(languages)).repeat(per_class)
        lengths = torch.randint(1, 11, (len(labels),), generator=g)
        tokens = torch.randint(2, 30, (len(labels), 10), generator=g)
        tokens[torch.arange(10)[None, :] >= lengths[:, None]] = 0
        return Split(tokens, labels, lengths)

    mnist = Dataset("mnist", "image", tuple(str(d) for d in range(10)), images(4), images(1), "synthetic", "test")
    lang = Dataset("languages", "tokens", tuple(languages), sentences(4), sentences(1), "synthetic", "test",
                   tokenizer="char", vocab_size=30, pad_id=0)
    return {"mnist": mnist, "languages": lang}


@pytest.mark.parametrize("model,stream", loop_cases())
@pytest.mark.parametrize("name,args", ARMS, ids=ARM_IDS)
def test_every_mitigation_runs_in_the_loop_and_resumes_exactly(name, args, model, stream, synthetic):
    """Two tiny tasks with finite losses; task 0, state saved through bytes, task 1 == both tasks straight."""
    from trainables.config import TrialConfig
    from trainables.loop import run_stream

    language = "lang" in stream
    cfg = TrialConfig(model=model, stream=stream, mitigation=name, mitigation_args=args, tasks=2,
                      epochs_per_task=1, batch_size=4, hidden=4, device="cpu", **({"seq_len": 8} if language else {}))
    data = synthetic["languages" if language else "mnist"]

    straight = []
    for record, state in run_stream(cfg, data):
        straight.append(record.as_dict())
        if record.task == 0:
            buffer = io.BytesIO()
            torch.save(state.state_dict(), buffer)
    final = {k: v.clone() for k, v in state.net.state_dict().items()}
    assert all(math.isfinite(r["train_loss"]) and not r["diverged"] for r in straight)
    assert [(r["task"], r["epoch"]) for r in straight] == [(0, 0), (1, 0)]

    saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    resumed, resumed_state = [], None
    for record, resumed_state in run_stream(cfg, data, saved):
        resumed.append(record.as_dict())
    for row in straight + resumed:
        row.pop("seconds")
    assert resumed == straight[1:]
    assert resumed_state is not None and resumed_state is not state
    after = resumed_state.net.state_dict()
    assert after.keys() == final.keys() and all(torch.equal(after[k], final[k]) for k in final)
