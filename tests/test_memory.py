"""The memory check: parameters counted without allocating, an activation estimate that bounds what backward
keeps, and a size that cannot fit refused in one line before training."""
from __future__ import annotations

import os

import pytest
import torch

from lopmodels.base import ModelSpec, build_model
from lopmodels.catalog import MODEL_INFO
from lopmodels.errors import ConfigError
from tests.processes import lop
from trainables.memory import activation_floats, check_fits, parameter_count

SPECS = {"mlp": ModelSpec("image", 10, 256), "lstm": ModelSpec("tokens", 2, 128, embed=32, vocab_size=500),
         "gru": ModelSpec("tokens", 2, 128, embed=32, vocab_size=500)}


def batch(spec: ModelSpec, rows: int, steps: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    generator = torch.Generator().manual_seed(0)
    if spec.input_kind == "image":
        return torch.randn(rows, 28, 28, generator=generator), None
    lengths = torch.randint(1, steps + 1, (rows,), generator=generator)
    return torch.randint(1, spec.vocab_size, (rows, steps), generator=generator), lengths


@pytest.mark.parametrize("model", sorted(SPECS))
def test_parameters_are_counted_without_building_the_model(model):
    spec = SPECS[model]
    built = build_model(model, spec, torch.Generator().manual_seed(0))
    assert parameter_count(model, spec) == sum(p.numel() for p in built.parameters())
    huge = ModelSpec(spec.input_kind, spec.num_classes, 10**6, spec.embed, spec.vocab_size)
    assert parameter_count(model, huge) > 10**12  # on the meta device: no memory taken


@pytest.mark.parametrize("model", sorted(SPECS))
def test_the_activation_estimate_holds_what_the_forward_saves_for_backward_and_its_gradients(model):
    spec, rows, steps = SPECS[model], 64, 20
    net = build_model(model, spec, torch.Generator().manual_seed(0))
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}  # saved weights (and views) are counted apart
    saved: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.untyped_storage().data_ptr() not in weights:
            saved[tensor.untyped_storage().data_ptr(), tensor.numel()] = tensor.numel()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        net.forward_units(*batch(spec, rows, steps)).logits.sum().backward()
    inputs = rows * 28 * 28 if spec.input_kind == "image" else 0  # the MLP keeps its input: data, not activations
    assert 2 * (sum(saved.values()) - inputs) <= activation_floats(model, spec, rows, steps)


def test_a_size_over_the_free_memory_names_itself():
    spec = ModelSpec("tokens", 2, 10**6, embed=64, vocab_size=20_000)
    with pytest.raises(ConfigError, match=r"model 'gru' at hidden 1,000,000 needs about [\d,.]+ GB .* lower --hidden"):
        check_fits("gru", spec, 512, 25, torch.device("cpu"))
    check_fits("gru", ModelSpec("tokens", 2, 64, embed=64, vocab_size=20_000), 8192, 25, torch.device("cpu"))


def test_every_model_declares_its_activation_floats():
    assert all(info.floats_per_unit_step > 0 for _, info in MODEL_INFO.items())


def test_lop_trial_refuses_a_hidden_size_that_cannot_fit_before_training(tmp_path, data_dir):
    out = tmp_path / "trial.parquet"
    run = lop("trial", "--model", "lstm", "--stream", "mnist-reshuffle", "--hidden", "3000000", "--tasks", "1",
              "--out", str(out), env={**os.environ, "LOP_DATA_DIR": str(data_dir)}, timeout=300)
    assert run.returncode == 2, run.stderr
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("lop: error")]
    assert "model 'lstm' at hidden 3,000,000 needs about" in error and "lower --hidden" in error
    assert not out.exists()


@pytest.mark.parametrize("model", ["mlp", "lstm"])
def test_the_drivers_spec_from_the_config_alone_is_the_trials(model, mnist):
    from trainables.config import TrialConfig
    from trainables.loop import head_size, model_spec
    from trainables.memory import config_spec
    from trainables.stream_data import build_stream_data
    cfg = TrialConfig(model=model, stream="mnist-reshuffle", train_limit=100, test_limit=100).resolved()
    stream = build_stream_data(cfg, mnist, torch.device("cpu"))
    assert config_spec(cfg) == model_spec(cfg, mnist, head_size(cfg, stream))


def test_the_driver_builds_every_model_of_a_gpu_sweep_before_any_trial(monkeypatch):
    """A configuration no model accepts fails on the driver, naming the arm, not in every trial (and its retries);
    on GPUs too, where the driver cannot compare sizes with memory."""
    import trainables.memory
    from sweeps.base import Trial
    from sweeps.cluster import Resources, check_models
    from trainables.config import TrialConfig
    built = []

    def picky(model: str, spec: ModelSpec) -> int:  # as a model whose constructor refuses odd widths would
        built.append(spec.hidden)
        if spec.hidden % 2:
            raise ConfigError(f"model {model!r} needs an even hidden size, got {spec.hidden}")
        return 1

    monkeypatch.setattr(trainables.memory, "parameter_count", picky)
    trials = [Trial(arm, k, TrialConfig(model="mlp", stream="mnist-reshuffle", hidden=hidden))
              for arm, hidden in (("even", 8), ("odd", 7)) for k in range(3)]
    with pytest.raises(ConfigError, match=r"^arm 'odd': model 'mlp' needs an even hidden size, got 7$"):
        check_models(trials, Resources(gpus_per_trial=1))
    assert built == [8, 7]  # each distinct model once
