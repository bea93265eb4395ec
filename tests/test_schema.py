"""The results schema (trainables/schema.py): exports of different sweeps have the same columns in the same order
with the same types, so they concatenate strictly in pyarrow, polars and pandas; the mitigation field table, the
record writers and docs/records.md agree with it; older compact exports are upgraded on read."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.compact import METADATA_KEY, read_compact
from lopmodels.errors import ConfigError
from sweeps.manifest import Manifest
from sweeps.results import load_results
from sweeps.storage import location
from tests.processes import lop
from trainables.schema import (CONFIG, EPOCH, SCHEMA_VERSION, records_frame, records_table, results_schema,
                               type_name)

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = sorted((ROOT / "docs" / "results" / "issue15-runs" / "exports").glob("*.parquet"))  # schema 1 and later
TINY = ["--tasks", "2", "--epochs", "2", "--test-limit", "200", "--batch-size", "100", "--hidden", "8",
        "--device", "cpu", "--threads", "1"]
# three sweeps of one trial each: sweep -> (arm, replicate, `lop trial` options); a different model, stream or
# mitigation each, so each alone would leave other columns null
SWEEPS = {
    "mnist-plain": ("mlp", 0, ["--model", "mlp", "--stream", "mnist-reshuffle", "--train-limit", "600"]),
    "mnist-l2": ("l2", 1, ["--model", "mlp", "--stream", "mnist-reshuffle", "--train-limit", "600", "--seed", "1",
                           "--stream-seed", "1", "--mitigation", "l2", "--set", "mitigation.decoupled=true"]),
    "lang-cbp": ("gru-cbp", 0, ["--model", "gru", "--stream", "lang-reshuffle", "--train-limit", "400",
                                "--seq-len", "12", "--mitigation", "cbp"]),
}
# what Tune adds to every row it writes to result.json (sweeps.results drops all but node_ip and pid)
TUNE_KEYS = {"timestamp": 1700000000, "checkpoint_dir_name": None, "done": False, "training_iteration": 1,
             "date": "2024-01-01_00-00-00", "time_this_iter_s": 0.1, "time_total_s": 0.1, "pid": 4242,
             "hostname": "node", "node_ip": "127.0.0.1", "time_since_restore": 0.1, "iterations_since_restore": 1}


def sweep_folder(records: pd.DataFrame, folder: Path, sweep: str, arm: str, replicate: int) -> Path:
    """A sweep folder as `lop sweep run` and Tune lay it out (manifest, snapshot, `<arm>-r<k>-<id>/result.json`),
    holding the real records of one `lop trial`. The `mnist-plain` rows lack `replicate`, as rows written
    before the column do."""
    trial_id = f"{sweep.replace('-', '')}0001"
    rows = records.assign(sweep=sweep, arm=arm, replicate=replicate, trial_id=trial_id)
    if sweep == "mnist-plain":
        rows = rows.drop(columns="replicate")
    lines = [json.dumps({**row, **TUNE_KEYS, "trial_id": trial_id})
             for row in json.loads(rows.to_json(orient="records"))]
    trial_dir = folder / f"{arm}-r{replicate}-{trial_id}"
    trial_dir.mkdir(parents=True)
    (trial_dir / "result.json").write_text("\n".join(lines) + "\n")
    snapshot = {"trial_data": [[json.dumps({"trial_id": trial_id, "status": "TERMINATED"}), "{}"]]}
    (folder / "experiment_state-2024-01-01_00-00-00.json").write_text(json.dumps(snapshot))
    Manifest(sweep=sweep, title=f"{sweep}: a test sweep", scale="smoke", arms=[arm], seeds=1, seed_start=replicate,
             trials=1, tasks=2, cpus_per_trial=1.0, gpus_per_trial=0.0, max_concurrent=None, max_failures=0,
             code_version=str(records["code_version"].iloc[0]), data_hash={}).write(location(str(folder)))
    return folder


@pytest.fixture(scope="module")
def env(data_dir):
    import os
    return {**os.environ, "LOP_DATA_DIR": str(data_dir)}


@pytest.fixture(scope="module")
def trials(tmp_path_factory, env) -> dict[str, Path]:
    """sweep -> the parquet file of its one real `lop trial`."""
    root = tmp_path_factory.mktemp("trials")
    out = {}
    for sweep, (_, _, options) in SWEEPS.items():
        out[sweep] = root / f"{sweep}.parquet"
        run = lop("trial", *options, *TINY, "--out", str(out[sweep]), env=env)
        assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory, trials) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sweeps")
    return {sweep: sweep_folder(pd.read_parquet(trials[sweep]), root / sweep, sweep, arm, replicate)
            for sweep, (arm, replicate, _) in SWEEPS.items()}


def export(folder: Path, out: Path, env: dict, *options: str) -> Path:
    run = lop("results", "export", str(folder), "--out", str(out), *options, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory, folders, env) -> dict[str, list[Path]]:
    """kind (full, compact) -> one export per sweep, by `lop results export`."""
    root = tmp_path_factory.mktemp("exports")
    return {"full": [export(f, root / f"{s}.parquet", env) for s, f in folders.items()],
            "compact": [export(f, root / f"{s}-compact.parquet", env, "--compact") for s, f in folders.items()]}


@pytest.mark.parametrize("kind", ["full", "compact"])
def test_exports_of_three_sweeps_have_one_schema_and_concatenate_strictly(exports, kind):
    schema = results_schema(compact=kind == "compact")
    tables = [pq.read_table(path) for path in exports[kind]]
    for table in tables:
        assert table.schema.remove_metadata() == schema, table.schema
        assert all(not pa.types.is_null(f.type) for f in table.schema)
    whole = pa.concat_tables(tables)  # promote_options="none": identical schemas only
    assert whole.num_rows == sum(t.num_rows for t in tables) and set(whole.column("schema_version").to_pylist()) \
        == {SCHEMA_VERSION}
    assert pl.concat([pl.read_parquet(path) for path in exports[kind]], how="vertical").shape \
        == (whole.num_rows, len(schema))
    # pandas with arrow dtypes keeps the schema's types exactly: every frame has the same dtypes, and so the whole
    frames = [pd.read_parquet(path, dtype_backend="pyarrow") for path in exports[kind]]
    assert all(list(f.dtypes) == list(frames[0].dtypes) for f in frames)
    assert list(pd.concat(frames, ignore_index=True).dtypes) == list(frames[0].dtypes)
    # numpy dtypes vary with the nulls a sweep has, but their concatenation is back in the schema unchanged
    plain = pd.concat([pd.read_parquet(path) for path in exports[kind]], ignore_index=True)
    assert records_table(plain, compact=kind == "compact").equals(whole.replace_schema_metadata(None))


def test_mitigation_fields_are_typed_and_null_where_the_mitigation_lacks_them(exports):
    frame = pl.concat([pl.read_parquet(path) for path in exports["full"]])
    mitigation = [c for c in frame.columns if c.startswith("mitigation.")]
    assert mitigation == sorted(mitigation) and len(mitigation) == 12
    assert frame.columns[-1] == "schema_version" and frame.columns[-13:-1] == mitigation
    by = {m: frame.filter(pl.col("mitigation") == m) for m in ("none", "l2", "cbp")}
    assert by["none"].select(mitigation).null_count().row(0) == (len(by["none"]),) * 12
    assert by["l2"]["mitigation.decoupled"].to_list() == [True] * 4
    assert by["l2"]["mitigation.weight_decay"].dtype == pl.Float64
    assert by["cbp"]["mitigation.maturity_threshold"].to_list() == [100] * 4
    assert frame.schema["mitigation.maturity_threshold"] == pl.Int64
    assert by["l2"]["mitigation.maturity_threshold"].null_count() == 4
    # replicate: recorded (l2's replicate 1), or the seed for rows written before the column
    assert by["l2"]["replicate"].to_list() == [1] * 4 and by["none"]["replicate"].to_list() == [0] * 4
    images = by["none"].select("embed", "vocab_size", "tokenizer", "languages", "truncated_fraction")
    assert images.null_count().row(0) == (4,) * 5  # typed nulls: int64, int64, string, string, double
    assert by["cbp"]["embed"].to_list() == [8] * 4 and by["cbp"]["node_ip"].to_list() == ["127.0.0.1"] * 4


def test_load_results_gives_what_the_export_file_gives(folders, exports):
    for folder, path in zip(folders.values(), exports["full"]):
        loaded, read = load_results(folder), pd.read_parquet(path)
        pd.testing.assert_frame_equal(loaded, read)
        assert type(loaded["task_classes"].iloc[0]) is type(read["task_classes"].iloc[0])


def test_lop_trial_writes_the_schema(trials):
    for path in trials.values():
        assert pq.read_schema(path).remove_metadata() == results_schema()


def test_csv_export_has_the_columns_and_task_classes_comma_joined(folders, exports, env, tmp_path):
    folder, parquet = folders["lang-cbp"], exports["full"][2]
    out = export(folder, tmp_path / "lang.csv", env, "--format", "csv")
    frame = pd.read_csv(out)
    assert list(frame.columns) == results_schema().names
    assert list(frame["task_classes"]) == [",".join(c) for c in pd.read_parquet(parquet)["task_classes"]]
    assert frame["task_classes"].str.split(",").map(len).eq(10).all()
    for options, message in ((["--compact", "--format", "csv"], "--compact writes parquet"),
                             (["--format", "csv"], "--out must name a .csv file for --format csv")):
        run = lop("results", "export", str(folder), "--out", str(tmp_path / "x.parquet"), *options, env=env)
        assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_status_and_list_print_one_json_object(folders, env):
    run = lop("sweep", "status", str(folders["mnist-l2"]), "--json", env=env)
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert set(status) == {"sweep", "title", "scale", "folder", "planned_trials", "driver", "driver_running",
                           "counts", "damaged_records", "resume", "trials"}
    assert status["counts"] == {"TERMINATED": 1} and status["driver_running"] is False and status["resume"] is None
    assert status["damaged_records"] == 0
    (trial,) = status["trials"]
    assert trial["name"].startswith("l2-r1-") and (trial["task"], trial["tasks"], trial["epoch"]) == (1, 2, 1)
    assert 0 <= trial["test_accuracy"] <= 1 and trial["state"] == "TERMINATED" and trial["error"] is None
    assert trial["damaged_records"] is None
    text = lop("sweep", "status", str(folders["mnist-l2"]), env=env).stdout
    assert "1 terminated" in text and f"epoch 2  test acc {trial['test_accuracy']:.3f}" in text
    listed = lop("sweep", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    sweeps = {entry["name"]: entry for entry in json.loads(listed.stdout)["sweeps"]}
    fig1 = sweeps["fig1"]
    assert set(fig1) == {"name", "title", "arms", "scales"} and "mlp" in fig1["arms"]
    assert list(fig1["scales"]) == ["paper", "small", "smoke"]
    assert set(fig1["scales"]["small"]) == {"trials", "replicates", "cpu_hours", "guessed_models"}
    assert fig1["scales"]["small"]["trials"] == 40 and fig1["scales"]["small"]["replicates"] == [5, 10]


def test_the_typed_mitigation_columns_are_the_builtin_mitigations_fields(monkeypatch):
    from lopmodels.mitigations import MITIGATIONS, Mitigation, builtin_fields
    from trainables.schema import mitigation_columns

    @dataclasses.dataclass
    class Outside(Mitigation):  # defined outside the package, as a plugin's is: its columns come from its values
        strength: float = 1.0

    MITIGATIONS.names()  # the built-in entries, loaded before this one joins
    monkeypatch.setitem(MITIGATIONS._entries, "outside", Outside)
    fields = builtin_fields()
    assert set(fields) == set(MITIGATIONS.names()) - {"outside"}
    assert fields["l2"] == {"weight_decay": "float", "decoupled": "bool"} and fields["none"] == {}
    assert fields["cbp"]["maturity_threshold"] == "int" and fields["shrink-perturb"]["every"] == "str"
    union = {f"mitigation.{field}" for entry in fields.values() for field in entry}
    assert [column.name for column in mitigation_columns()] == sorted(union) and len(union) == 12


def test_config_and_epoch_columns_are_what_the_records_write():
    from trainables.config import TrialConfig
    from trainables.loop import EpochRecord
    columns = [c for c in TrialConfig().columns() if not c.startswith("mitigation.")]
    assert columns == [name for name, _ in CONFIG]
    record = EpochRecord(task=0, epoch=0, task_classes=("0",), train_loss=0.0, train_accuracy=0.0, test_accuracy=0.0,
                         seconds=0.0, diverged=False, last_epoch_of_task=True, steps_per_task=1)
    assert list(record.as_dict()) == [name for name, _ in EPOCH]


def test_docs_list_every_column_with_its_type():
    text = (ROOT / "docs" / "records.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|", text, flags=re.MULTILINE)
    assert rows == [(f.name, type_name(f.type)) for f in results_schema(compact=True)]


def test_published_compact_exports_of_version_1_are_upgraded_on_read(exports):
    older = [p for p in PUBLISHED if json.loads(pq.read_schema(p).metadata[METADATA_KEY])["schema_version"] == 1]
    assert older  # docs/results holds exports made before version 2
    schema = results_schema(compact=True)
    tables = [pq.read_table(exports["compact"][0]).replace_schema_metadata(None)]
    for path in PUBLISHED:
        manifest, records = read_compact(path)
        assert list(records.columns) == schema.names and (records["replicate"] == records["seed"]).all()
        assert manifest.sweep == records["sweep"].iloc[0]
        tables.append(records_table(records, compact=True))
    assert pa.concat_tables(tables).schema == schema  # the old and the new in one table


def test_a_compact_export_of_an_unknown_version_is_refused_with_the_fix(exports, tmp_path):
    table = pq.read_table(exports["compact"][0])
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    future = tmp_path / "future.parquet"
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps({**meta, "schema_version": 99})}), future)
    with pytest.raises(ConfigError, match=r"schema version 99, this lop reads version\(s\) 1, 2; re-export it"):
        read_compact(future)


def test_an_undeclared_column_is_refused_and_a_plugins_mitigation_field_sorted_in(exports):
    records = pd.read_parquet(exports["full"][0])
    with pytest.raises(ConfigError, match="column\\(s\\) surprise that the results schema"):
        records_table(records.assign(surprise=1))
    with pytest.raises(ConfigError, match="record column hidden does not hold int64 values"):
        records_table(records.assign(hidden="wide"))
    table = records_table(records.assign(**{"mitigation.gain": 0.5}))
    names = [n for n in table.schema.names if n.startswith("mitigation.")]
    assert names == sorted(names) and table.schema.field("mitigation.gain").type == pa.float64()
    assert records_frame(table)["mitigation.gain"].eq(0.5).all()
