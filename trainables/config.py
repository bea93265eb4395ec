"""`TrialConfig`: everything that determines one trial. Its fields are the config columns of every record."""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lopmodels.catalog import MODEL_INFO, READOUTS
from lopmodels.errors import ConfigError
from lopmodels.registry import check_choice
from trainables.datasets import DATASETS
from trainables.ranges import NON_NEGATIVE, POSITIVE, STEP_SIZE, Range
from trainables.streams import PAIR_SAMPLINGS, STREAMS, StreamSpec, reads
from trainables.tokenizer_names import KINDS as TOKENIZER_KINDS

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
IMAGE_ROWS = 28


@dataclass(frozen=True)
class Switch:
    """A protocol switch: its values (the first is the correct default) and the trials it applies to."""

    values: tuple[Any, ...]
    applies_to: str  # where a non-default value is allowed, for the error message
    applies: Callable[["TrialConfig"], bool]


# The reference code's faults as opt-in fields, and the step-matched protocol (docs/protocols.md).
SWITCHES = {
    "readout": Switch(READOUTS, "recurrent models", lambda cfg: MODEL_INFO[cfg.model].recurrent),
    "pair_sampling": Switch(PAIR_SAMPLINGS, "binary streams (mnist-binary, lang-binary)",
                            lambda cfg: cfg.stream_spec.is_binary),
    "pixels": Switch(("normalized", "raw"), "MNIST streams",
                     lambda cfg: DATASETS[cfg.stream_spec.dataset].raw_pixels),
    "head": Switch(("task", "all-classes"), "binary streams (mnist-binary, lang-binary)",
                   lambda cfg: cfg.stream_spec.is_binary),
    "test_split": Switch(("fixed", "resplit"), "language streams", lambda cfg: cfg.stream_spec.is_language),
    "match_steps": Switch((False, True), "language streams", lambda cfg: cfg.stream_spec.is_language),
}


def matched_epochs(paper_steps: int, task_train_size: int, batch_size: int) -> int:
    """Epochs per task whose optimiser steps reach the paper's: ceil(paper steps / steps per epoch)."""
    return math.ceil(paper_steps / math.ceil(task_train_size / batch_size))


def about(default: Any, help: str, option: str | None = None, valid: Range | None = None) -> Any:
    """A TrialConfig field with its help text (and command-line name, if not `--field-name`; and a numeric
    field's valid range): `lop trial`'s options are made from these (sweeps/trial_options.py)."""
    return field(default=default, metadata={"help": help, **({"option": option} if option else {}),
                                            **({"range": valid} if valid else {})})


@dataclass(frozen=True)
class TrialConfig:
    """Everything that determines one trial. `None` means the paper's default for the stream or model."""

    model: str = about("mlp", "A model: " + ", ".join(MODEL_INFO.names()) + ".")
    stream: str = about("mnist-reshuffle", "A task stream (docs/streams.md): " + ", ".join(STREAMS.names()) + ".")
    mitigation: str = about("none", "A mitigation (lopmodels/mitigations/; docs/mitigations.md).")
    # the mitigation's fields: `--set field=value`
    mitigation_args: Mapping[str, Any] = field(default_factory=dict, metadata={"option": "--set"})
    tasks: int | None = about(None, "Tasks in the stream (default: the stream's, 50 MNIST, 100 languages).",
                              valid=POSITIVE)
    epochs_per_task: int | None = about(None, "Epochs per task (default: the stream's, 30 for the paper's).",
                                        option="--epochs", valid=POSITIVE)
    seed: int = about(0, "Model initialisation, batch order and mitigation randomness.", valid=NON_NEGATIVE)
    stream_seed: int = about(0, "Task order: shared by every arm of a replicate, so comparisons are paired.",
                             valid=NON_NEGATIVE)
    hidden: int | None = about(None, "Units per hidden layer (default: the model's, mlp 25, lstm 25, gru 64).",
                               valid=POSITIVE)
    embed: int | None = about(None, "Token embedding size (default: = hidden; language streams only).",
                              valid=POSITIVE)
    hidden_layers: int = about(2, "Hidden layers of the MLP.", valid=POSITIVE)
    seq_len: int | None = about(None, "Tokens kept per sentence (default: 25 lang-reshuffle, 50 lang-binary).",
                                valid=POSITIVE)
    tokenizer: str = about("bpe", "bpe (subword, trained on the training split) or char.")
    vocab_size: int = about(8192, "BPE vocabulary size.", valid=POSITIVE)
    languages: tuple[str, ...] | None = about(None, "Comma-separated ISO 639-3 codes (language streams; default: "
                                                     "the stream's).")
    batch_size: int | None = about(None, "Default: the stream's (6000 MNIST, 512 / 128 languages).",
                                   valid=POSITIVE)
    lr: float | None = about(None, "Adam's learning rate (default: the stream's, 0.01, lang-binary 0.1).",
                             valid=STEP_SIZE)
    train_limit: int | None = about(None, "A fixed class-balanced training subset (default: the stream's).",
                                    valid=POSITIVE)
    test_limit: int | None = about(None, "A fixed class-balanced test subset.", valid=POSITIVE)
    device: str = about("auto", "auto (CUDA when visible), cpu, cuda or cuda:N.")
    # protocol switches (SWITCHES; docs/protocols.md): the defaults are the correct protocol
    readout: str = about("state", "Recurrent models: state, or the reference's last-position (out[:, -1]); "
                                  "docs/protocols.md.")
    pair_sampling: str = about("distinct", "Binary streams: distinct, or the reference's with-replacement "
                                           "(MNIST) or cycle-ordered (languages).")
    pixels: str = about("normalized", "MNIST: normalized, or the reference's raw (0-255).")
    head: str = about("task", "Binary streams: task (2 outputs), or the reference's all-classes (one per class).")
    test_split: str = about("fixed", "Language streams: fixed, or the reference's resplit (train and test "
                                     "re-split per task).")
    match_steps: bool = about(False, "Language streams: raise the epochs per task to the paper's optimiser "
                                     "steps (not with --epochs).")

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODEL_INFO.names())
        check_choice("stream", self.stream, STREAMS.names())
        check_choice("tokenizer", self.tokenizer, TOKENIZER_KINDS)
        if not DEVICE_PATTERN.match(self.device):
            raise ConfigError(f"unknown device {self.device!r}; choose one of: auto, cpu, cuda, cuda:N")
        object.__setattr__(self, "mitigation_args", dict(self.mitigation_args))
        self.built_mitigation()  # unknown fields and bad values fail here
        for f in dataclasses.fields(self):  # every numeric field's range, declared beside its help
            value, valid = getattr(self, f.name), f.metadata.get("range")
            defaulted = value is None and f.default is None  # None: the paper's default, where a field has one
            if valid is not None and not defaulted and not valid.holds(value):
                raise ConfigError(valid.error(f.name, value))
        spec = self.stream_spec
        if not reads(self.model, self.stream):
            able = [m for m in MODEL_INFO.names() if reads(m, self.stream)]
            raise ConfigError(f"model {self.model!r} cannot read stream {self.stream!r} "
                              f"({MODEL_INFO[self.model].reads_text()}); use --model " + " or --model ".join(able))
        if not spec.is_language:
            for name in ("embed", "languages"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{name} applies to language streams only, not {self.stream!r}")
            if self.seq_len not in (None, IMAGE_ROWS):
                raise ConfigError(f"seq_len applies to language streams only (an image is {IMAGE_ROWS} rows)")
        if self.languages is not None:
            object.__setattr__(self, "languages", tuple(self.languages))
            if len(set(self.languages)) < 2 or len(set(self.languages)) != len(self.languages):
                raise ConfigError(f"languages must be at least two distinct codes, got {list(self.languages)}")
        classes = self.languages or spec.classes
        if self.train_limit is not None and self.train_limit < len(classes):
            raise ConfigError(f"train_limit must be at least the number of classes ({len(classes)}), "
                              f"got {self.train_limit}")
        if self.test_limit is not None and self.test_limit < len(classes):
            raise ConfigError(f"test_limit must be at least the number of classes ({len(classes)}), "
                              f"got {self.test_limit}")
        self._check_switches()

    def _check_switches(self) -> None:
        for name, switch in SWITCHES.items():
            value, default = getattr(self, name), switch.values[0]
            if value not in switch.values or type(value) is not type(default):
                valid = ", ".join(repr(v) for v in switch.values)
                raise ConfigError(f"{name} must be one of {valid} (it applies to {switch.applies_to}), got {value!r}")
            if value != default and not switch.applies(self):
                raise ConfigError(f"{name}={value!r} applies to {switch.applies_to} only, not model {self.model!r} "
                                  f"on stream {self.stream!r}; leave {name} at {default!r}")

    @property
    def stream_spec(self) -> StreamSpec:
        return STREAMS[self.stream]

    def resolved(self) -> "TrialConfig":
        """This config with every `None` replaced by the paper's default for its stream and model."""
        spec = self.stream_spec
        hidden = self.hidden or MODEL_INFO[self.model].default_hidden
        return dataclasses.replace(
            self,
            tasks=self.tasks or spec.tasks,
            # match_steps leaves it to `epochs_for`, once the data's size is known
            epochs_per_task=self.epochs_per_task or (None if self.match_steps else spec.epochs_per_task),
            hidden=hidden,
            embed=(self.embed or hidden) if spec.is_language else None,
            seq_len=self.seq_len or spec.seq_len,
            languages=(self.languages or spec.classes) if spec.is_language else None,
            batch_size=self.batch_size or spec.batch_size,
            lr=self.lr or spec.lr,
            train_limit=self.train_limit or spec.train_limit,
        )

    def epochs_for(self, task_train_size: int) -> int:
        """Epochs per task: as given, else matched to the paper's optimiser steps (match_steps), else 30.

        An explicit `epochs_per_task` wins, so a resolved config resolves to itself (records, checkpoints).
        """
        if self.epochs_per_task is not None:
            return self.epochs_per_task
        spec = self.stream_spec
        if not self.match_steps:
            return spec.epochs_per_task
        return matched_epochs(spec.paper_steps_per_task, task_train_size, self.batch_size or spec.batch_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (a Tune config, a checkpoint, a record)."""
        out = dataclasses.asdict(self)
        out["mitigation_args"] = dict(self.mitigation_args)
        out["languages"] = list(self.languages) if self.languages is not None else None
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrialConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**values)

    def built_mitigation(self) -> Any:
        """The mitigation with its fields (a `lopmodels.mitigations.Mitigation`); torch is imported here, not
        when this module is, so `lop --help` and the option list need none."""
        from lopmodels import build_mitigation
        return build_mitigation(self.mitigation, self.mitigation_args)

    def columns(self) -> dict[str, Any]:
        """The config columns of a record: fields, with the mitigation's (defaults included) as `mitigation.<field>`."""
        out = self.to_dict()
        del out["mitigation_args"]
        out["languages"] = ",".join(self.languages) if self.languages is not None else None
        for name, value in self.built_mitigation().fields().items():
            out[f"mitigation.{name}"] = value
        return out
