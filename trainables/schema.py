"""The results table's schema: every column of every export, in order, with its arrow type (docs/records.md).

One declaration serves `lop trial --out`, `lop results export` (full and compact), `load_results` and the column
table of docs/records.md (a test checks the doc against it), so the exports of any sweeps have the same columns
in the same order with the same types and concatenate without relaxing anything: the core columns, then every
mitigation's fields (`mitigation.<field>`, sorted; null in the rows of other mitigations), then `schema_version`.
A column that is null for a whole sweep is still typed. Torch-free: the mitigations' fields are read off their
dataclasses (`lopmodels.mitigations.builtin_fields`), whose modules import torch only when a hook runs.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lopmodels.diagnostic_names import DIAGNOSTICS
from lopmodels.errors import ConfigError
from lopmodels.mitigations import builtin_fields
from trainables.files import replacing

# The version of the columns below. Bump it when a column is added, removed, renamed, retyped or changes meaning;
# `analysis.compact.read_compact` upgrades the compact exports of older versions it knows (UPGRADABLE).
SCHEMA_VERSION = 2
STRING, INT, FLOAT, BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()
CLASSES = pa.list_(STRING)
MITIGATION_TYPES = {"float": FLOAT, "int": INT, "bool": BOOL, "str": STRING}
MITIGATION_PREFIX = "mitigation."
FORMATS = ("parquet", "csv")  # `lop results export --format`

IDS = [("sweep", STRING), ("arm", STRING), ("replicate", INT), ("trial_id", STRING)]
# `TrialConfig`'s fields as `TrialConfig.columns` records them (a test checks the two agree)
CONFIG = [("model", STRING), ("stream", STRING), ("mitigation", STRING), ("tasks", INT), ("epochs_per_task", INT),
          ("seed", INT), ("stream_seed", INT), ("hidden", INT), ("embed", INT), ("hidden_layers", INT),
          ("seq_len", INT), ("tokenizer", STRING), ("vocab_size", INT), ("languages", STRING),
          ("batch_size", INT), ("lr", FLOAT), ("train_limit", INT), ("test_limit", INT), ("device", STRING),
          ("readout", STRING), ("pair_sampling", STRING), ("pixels", STRING), ("head", STRING),
          ("test_split", STRING), ("match_steps", BOOL)]
# `EpochRecord.as_dict`, then `trainables.records.provenance`, then what Tune adds (`sweeps.results`)
EPOCH = [("task", INT), ("epoch", INT), ("task_classes", CLASSES), ("train_loss", FLOAT),
         ("train_accuracy", FLOAT), ("test_accuracy", FLOAT), ("seconds", FLOAT), ("diverged", BOOL),
         ("steps_per_task", INT), ("truncated_fraction", FLOAT), ("tokens_kept_fraction", FLOAT),
         *((name, FLOAT) for name in DIAGNOSTICS)]
PROVENANCE = [("code_version", STRING), ("data_hash", STRING), ("threads", INT), ("node_ip", STRING), ("pid", INT)]
CORE = [pa.field(name, kind) for name, kind in IDS + CONFIG + EPOCH + PROVENANCE]
COMPACT = [pa.field("task_seconds", FLOAT)]  # a compact export's one more column (analysis/compact.py)
VERSION = pa.field("schema_version", INT)


def field_types() -> dict[str, str]:
    """Every field of any built-in mitigation, sorted, with its type; a field two mitigations share has one type."""
    types: dict[str, str] = {}
    for name, fields in builtin_fields().items():
        for field, kind in fields.items():
            if types.setdefault(field, kind) != kind:
                raise TypeError(f"mitigation field {field!r} is a {types[field]} in one mitigation and a {kind} in "
                                f"{name!r}: one column cannot hold both")
    return dict(sorted(types.items()))


def mitigation_columns() -> list[pa.Field]:
    """`mitigation.<field>` for every field of a built-in mitigation, sorted, typed."""
    return [pa.field(MITIGATION_PREFIX + name, MITIGATION_TYPES[kind]) for name, kind in field_types().items()]


def results_schema(*, compact: bool = False, plugin_fields: list[pa.Field] | tuple[pa.Field, ...] = ()) -> pa.Schema:
    """The columns of a full export (or, `compact`, of a compact one): core, mitigation fields, [task_seconds],
    schema_version. `plugin_fields`: the `mitigation.<field>` columns of a plugin's mitigations, sorted in."""
    mitigation = sorted([*mitigation_columns(), *plugin_fields], key=lambda f: f.name)
    return pa.schema([*CORE, *mitigation, *(COMPACT if compact else []), VERSION])


def type_name(kind: pa.DataType) -> str:
    """A column's type as docs/records.md writes it: string, int64, double, bool, list<string>."""
    return f"list<{kind.value_type}>" if pa.types.is_list(kind) else str(kind)


def column(frame: pd.DataFrame, field: pa.Field) -> pa.Array:
    """`frame`'s column `field.name` as an array of the field's type; nulls where the column is absent."""
    if field.name not in frame.columns:
        return pa.nulls(len(frame), field.type)
    try:
        return pa.array(frame[field.name], type=field.type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ConfigError(f"record column {field.name} does not hold {type_name(field.type)} values "
                          f"({str(error).splitlines()[0]}); the records are not of this lop's schema "
                          "(docs/records.md)") from None


def records_table(records: pd.DataFrame, *, compact: bool = False) -> pa.Table:
    """`records` in the schema: every column in order and typed, absent ones null, `schema_version` set.

    Records written before `replicate` was a column get the seed (every sweep's replicate k has seed k). A
    `mitigation.<field>` the built-in mitigations lack (a plugin's) is kept, sorted in, with the type its values
    have; any other column not in the schema is refused, so a record column is never added without its type."""
    records = records.assign(schema_version=SCHEMA_VERSION)
    if "replicate" not in records.columns and "seed" in records.columns:
        records = records.assign(replicate=records["seed"])
    base = results_schema(compact=compact)
    unknown = [c for c in records.columns if c not in base.names]
    plugin = [c for c in unknown if c.startswith(MITIGATION_PREFIX)]
    other = [c for c in unknown if c not in plugin]
    if other:
        raise ConfigError(f"the records hold column(s) {', '.join(other)} that the results schema (docs/records.md, "
                          "trainables/schema.py) does not declare; export them with the lop that wrote them")
    plugin_fields = [pa.field(c, pa.array(records[c], from_pandas=True).type) for c in plugin]
    schema = results_schema(compact=compact, plugin_fields=plugin_fields)
    return pa.Table.from_arrays([column(records, field) for field in schema], schema=schema)


def records_frame(table: pa.Table) -> pd.DataFrame:
    """A table of the schema as pandas, exactly as `pandas.read_parquet` gives an export: int columns with nulls
    as float64, bool columns with nulls as object, `task_classes` as arrays of strings."""
    return table.to_pandas()


def csv_table(table: pa.Table) -> pa.Table:
    """`table` for CSV, which has no list type: `task_classes` comma-joined, as `languages` is."""
    index = table.schema.get_field_index("task_classes")
    joined = pc.binary_join(table.column(index), ",")
    return table.set_column(index, pa.field("task_classes", STRING), joined)


def write_records(records: pd.DataFrame, out: Path, fmt: str = "parquet") -> pa.Table:
    """Write `records` in the schema to `out` (atomically) as parquet or CSV; the table written."""
    table = records_table(records)
    with replacing(out) as tmp:
        if fmt == "csv":
            pacsv.write_csv(csv_table(table), tmp)
        else:
            pq.write_table(table, tmp)
    return table
