"""`lop report` on a real smoke sweep (real Ray, real files), on partial and edited copies of it, and bad input."""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from analysis import claims, figures, stats
from sweeps.results import load_results
from analysis.metrics import diagnostic_columns
from analysis.report import write_report
from tests.processes import kill_descendants, lop, lop_imports_torch

@pytest.fixture(scope="module")
def sweep(tmp_path_factory, ray_env) -> Path:
    """A finished `fig1` smoke sweep: arms mlp and lstm, 2 replicates, 2 tasks of 1 epoch."""
    storage = tmp_path_factory.mktemp("sweeps")
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--seeds", "2", "--arms", "mlp,lstm", "--storage",
              str(storage), env=ray_env)
    kill_descendants()
    assert run.returncode == 0, run.stderr[-3000:]
    return storage / "fig1"


def edited_copy(sweep: Path, to: Path, row: Callable[[dict], dict] = lambda r: r,
                manifest: Callable[[dict], dict] = lambda m: m) -> Path:
    """A copy of `sweep` whose result rows and manifest went through `row` and `manifest`."""
    shutil.copytree(sweep, to, ignore=shutil.ignore_patterns("checkpoint_*", "events.out*", "*.lock"))
    for result in to.glob("*/result.json"):
        rows = [row(json.loads(line)) for line in result.read_text().splitlines() if line.strip()]
        result.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = to / "lop-sweep.json"
    path.write_text(json.dumps(manifest(json.loads(path.read_text()))))
    return to


def relabel(arms: dict[str, dict]) -> Callable[[dict], dict]:
    """A row edit: the fields in `arms[row's arm]` replace the row's."""
    return lambda r: {**r, **arms.get(r["arm"], {})}


def test_report_of_a_smoke_sweep_writes_every_figure_and_table(sweep, tmp_path, ray_env):
    out = tmp_path / "report"
    run = lop("report", str(sweep), "--out", str(out), env=ray_env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "report: reading" in run.stderr and "report: wrote" in run.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["figures/fig1-accuracy.png", "figures/fig1-accuracy.svg", "figures/fig1-diagnostics.png",
                       "figures/fig1-diagnostics.svg", "report.html", "report.md", "tables/claims.csv",
                       "tables/claims.md", "tables/cost.csv", "tables/cost.md", "tables/degradation.csv",
                       "tables/degradation.md", "tables/steps.csv", "tables/steps.md"]
    md = (out / "report.md").read_text()
    for picture in ("figures/fig1-accuracy.png", "figures/fig1-diagnostics.png"):
        assert f"]({picture})" in md
    assert md.index("## Claims") < md.index("Figure 1: MNIST label reshuffle: MLP vs LSTM") < md.index("## Tables")
    assert "(the paper's Figure 1, \"Baseline MNIST Reshuffle Experiments.\")" in md
    assert "MLP " in md and "LSTM " in md and "of its first-task accuracy by task 2" in md
    assert "What is missing" not in md
    table = pd.read_csv(out / "tables" / "degradation.csv")
    assert sorted(table["arm"]) == ["lstm", "mlp"] and (table["n"] == 2).all() and (table["diverged"] == 0).all()
    # the smoke scale is not the paper's configuration: no paper value, a note saying what differs
    assert table["paper"].isna().all()
    assert table["paper_note"].str.contains("paper: after 50 tasks × 30 epochs; this run: 2 × 1").all()
    steps = pd.read_csv(out / "tables" / "steps.csv")  # 500 digits at batch 6000: one step an epoch
    assert steps[["arm", "steps_min", "steps_max", "paper_steps"]].values.tolist() == [["lstm", 1, 1, 300],
                                                                                        ["mlp", 1, 1, 300]]
    assert "| fig1 | mlp | mnist-reshuffle | 1 | 1 | 300 |" in (out / "tables" / "steps.md").read_text()
    cost = pd.read_csv(out / "tables" / "cost.csv").set_index("arm")
    records = load_results(sweep)
    for arm in ("mlp", "lstm"):
        part = records[records["arm"] == arm]
        assert cost.loc[arm, "trials"] == 2 and cost.loc[arm, "tasks finished"] == 4
        assert cost.loc[arm, "wall hours"] == pytest.approx(part["seconds"].sum() / 3600)
        assert cost.loc[arm, "CPU-hours"] == pytest.approx((part["seconds"] * part["threads"]).sum() / 3600)


def test_the_html_page_is_self_contained(sweep, tmp_path):
    out = tmp_path / "report"
    assert write_report([sweep], out) == []
    page = (out / "report.html").read_text()
    pictures = re.findall(r'<img src="([^"]+)"', page)
    assert len(pictures) == 2 and all(p.startswith("data:image/png;base64,") for p in pictures)
    assert base64.b64decode(pictures[0].split(",", 1)[1]) == (out / "figures" / "fig1-accuracy.png").read_bytes()
    assert "<code>fig1</code>" in page and "`" not in re.sub(r"<img [^>]+>", "", page)
    assert not re.search(r'(src|href)="https?:', page)


def test_the_claims_table_gives_a_verdict_for_each_claim_run(sweep, tmp_path):
    out = tmp_path / "report"
    assert write_report([sweep], out) == []
    table = pd.read_csv(out / "tables" / "claims.csv").set_index("id")
    assert set(table.index) == set(claims.BY_ID)
    run = table[table["test"].isin(["fig1/mlp", "fig1/lstm", "fig1/lstm vs fig1/mlp"])]
    assert sorted(run.index) == ["lstm-degrades-less-than-mlp", "lstm-loses-plasticity-mnist-reshuffle",
                                 "mlp-loses-plasticity-mnist-reshuffle", "recurrent-degrade-less-than-mlp/lstm"]
    assert (run["n"] == 2).all() and run["verdict"].isin(["supported", "contradicted", "inconclusive"]).all()
    assert (run["scale_note"] == "at scale smoke: 2 of 50 tasks, 1 of 30 epochs per task").all()
    assert run["holm_level"].notna().all() and run["verdict_holm"].notna().all()
    rest = table.drop(run.index)
    assert set(rest["verdict"]) == {"not run", "not run (no verdict)"}
    md = (out / "report.md").read_text()
    assert "at scale smoke: 2 of 50 tasks" in md and "`mlp-loses-plasticity-mnist-reshuffle`" in md
    assert "rules frozen when issue 10 lands" in md


def labelled(ax) -> list[str]:
    """The labels of an axis's legend lines (matplotlib hides labels starting with `_`, e.g. `_replicate`)."""
    return [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]


def test_each_figure_has_one_line_and_band_per_arm_and_thin_replicate_lines(sweep):
    records = load_results(sweep)
    accuracy = figures.accuracy_figure(records, "Figure 1")
    (ax,) = accuracy.axes
    assert labelled(ax) == ["LSTM", "MLP"] and len(ax.collections) == 2
    assert [line.get_label() for line in ax.lines].count("_replicate") == 4  # 2 arms x 2 replicates (< 5)
    diagnostics = figures.diagnostics_figure(records, "Figure 1: diagnostics")
    panels = [ax for ax in diagnostics.axes if ax.get_visible()]
    names = diagnostic_columns(records)
    assert len(panels) == len(names) == 6
    for ax, name in zip(panels, names):
        arms = sorted(records.loc[records[name].notna(), "model"].str.upper().unique())
        assert sorted(labelled(ax)) == arms, name
        assert len(ax.collections) == len(arms)


def test_a_partial_sweep_gives_a_partial_report(sweep, tmp_path):
    partial = edited_copy(sweep, tmp_path / "fig1")
    for folder in partial.glob("lstm-r*"):  # an arm that has not started
        shutil.rmtree(folder)
    (result,) = partial.glob("mlp-r1-*/result.json")  # a replicate stopped after its first task
    result.write_text(result.read_text().splitlines()[0] + "\n")
    out = tmp_path / "report"
    lines: list[str] = []
    assert write_report([partial], out, echo=lines.append) == []
    md = (out / "report.md").read_text()
    assert "## What is missing" in md
    assert "fig1: arm lstm has no finished epoch" in md and "arm mlp replicate 1 finished 1 of 2 tasks" in md
    table = pd.read_csv(out / "tables" / "degradation.csv")
    assert table[["arm", "n", "incomplete"]].values.tolist() == [["mlp", 1, 1]]
    (ax,) = figures.accuracy_figure(load_results(partial), "partial").axes
    assert labelled(ax) == ["MLP"]
    assert any("report: wrote" in line for line in lines)


def test_missing_replicates_follow_each_arms_own_count(sweep, tmp_path):
    """A manifest of per-arm defaults (`--seeds` not given): 3 replicates asked of mlp, 2 of lstm."""
    asked = edited_copy(sweep, tmp_path / "fig1", manifest=lambda m: {**m, "seeds": None,
                                                                     "arm_seeds": {"mlp": 3, "lstm": 2}})
    out = tmp_path / "report"
    assert write_report([asked], out) == []
    md = (out / "report.md").read_text()
    assert "fig1: arm mlp replicate 2 has no finished epoch" in md
    assert "arm lstm replicate 2" not in md and "replicates per arm: lstm 2, mlp 3" in md


def test_mitigation_arms_get_table1_paired_with_their_baseline(sweep, tmp_path):
    arms = {"mlp": {"arm": "baseline", "sweep": "fig4"},
            "lstm": {"arm": "l2-1e-3", "mitigation": "l2", "model": "mlp", "sweep": "fig4"}}  # same config
    edited = edited_copy(sweep, tmp_path / "fig4", relabel(arms),
                         lambda m: {**m, "sweep": "fig4", "arms": ["baseline", "l2-1e-3"]})
    out = tmp_path / "report"
    assert write_report([edited], out) == []
    table = pd.read_csv(out / "tables" / "table1-iaa.csv")
    assert table[["arm", "baseline", "n", "ci_method"]].values.tolist() == [["l2-1e-3", "baseline", 2,
                                                                             stats.RATIO_METHOD]]
    records = load_results(edited)
    average = records.groupby(["arm", "seed"])["test_accuracy"].mean().unstack("arm")
    by_hand = (average["l2-1e-3"].mean() / average["baseline"].mean() - 1) * 100  # the ratio of the arms' means
    assert table["iaa"].iloc[0] == pytest.approx(by_hand)
    md = (out / "report.md").read_text()
    assert "Table 1: increase in average accuracy (IAA)" in md and "tables/table1-iaa.csv" in md


def test_a_missing_baseline_is_named_exit_2_and_the_rest_is_written(sweep, tmp_path, ray_env):
    arms = {"lstm": {"arm": "cbp", "mitigation": "cbp"}}
    edited = edited_copy(sweep, tmp_path / "fig4", relabel(arms), lambda m: {**m, "arms": ["cbp", "mlp"]})
    out = tmp_path / "report"
    run = lop("report", str(edited), "--out", str(out), env=ray_env)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("lop: error:")]
    assert len(errors) == 1 and "baseline arm 'baseline' is missing" in errors[0] and "cbp" in errors[0]
    assert (out / "report.md").is_file() and (out / "tables" / "degradation.csv").is_file()
    assert not (out / "tables" / "table1-iaa.csv").exists()
    assert "baseline arm 'baseline' is missing" in (out / "report.md").read_text()


def test_a_sequence_length_by_hidden_size_sweep_gets_a_heat_map(sweep, tmp_path):
    cells = {"mlp": {"arm": "len15-h32", "seq_len": 15, "hidden": 32, "sweep": "fig6"},
             "lstm": {"arm": "len50-h64", "seq_len": 50, "hidden": 64, "model": "mlp", "sweep": "fig6"}}
    edited = edited_copy(sweep, tmp_path / "fig6", relabel(cells),
                         lambda m: {**m, "sweep": "fig6", "arms": ["len15-h32", "len50-h64"]})
    out = tmp_path / "report"
    assert write_report([edited], out) == []
    assert (out / "figures" / "fig6-degradation-heatmap.png").is_file()
    assert (out / "figures" / "fig6-degradation-heatmap.svg").is_file()
    md = (out / "report.md").read_text()
    assert "degradation by sequence length and hidden size" in md and "ranges from" in md


def test_records_of_another_sweep_than_the_manifest_s_are_refused(sweep, tmp_path):
    edited = edited_copy(sweep, tmp_path / "fig6", manifest=lambda m: {**m, "sweep": "fig6"})
    problems = write_report([edited], tmp_path / "report")
    assert len(problems) == 1 and "belong to sweep(s) fig1" in problems[0]
    assert not (tmp_path / "report").exists()


def test_bad_paths_exit_2_naming_what_is_missing_and_write_nothing(sweep, tmp_path, ray_env):
    unfinished = edited_copy(sweep, tmp_path / "unfinished", lambda r: {**r, "epochs_per_task": 3})
    out = tmp_path / "report"
    run = lop("report", str(tmp_path / "nowhere"), str(unfinished), "--out", str(out), env=ray_env)
    assert run.returncode == 2, run.stderr
    assert f"no sweep at {tmp_path / 'nowhere'}" in run.stderr
    assert "sweep fig1" in run.stderr and "has no finished task yet" in run.stderr
    assert not out.exists()


def test_truncation_and_collapsed_replicates_are_reported(sweep, tmp_path):
    def edit(row: dict) -> dict:
        row = {**row, "truncated_fraction": 0.86 if row["arm"] == "mlp" else 0.5, "tokens_kept_fraction": 0.61,
               "seq_len": 25}
        if row["arm"] == "mlp" and row["seed"] == 1 and row["task"] == 1:  # every feature zero at task 2's end
            row.update(effective_rank=0.0, stable_rank=0.0)
        return row
    out = tmp_path / "report"
    assert write_report([edited_copy(sweep, tmp_path / "fig1", edit)], out) == []
    truncation = pd.read_csv(out / "tables" / "truncation.csv")
    assert truncation[["sweep", "sequence length", "sentences truncated", "tokens kept", "trials"]].values.tolist() \
        == [["fig1", 25, "50.0 to 86.0 %", "61.0 %", 4]]
    md = (out / "report.md").read_text()
    assert "Collapsed representations" in md and "MLP 1 of 2 (first at task 2)" in md


def compact_export(folder: Path, out: Path, env: dict | None = None) -> Path:
    run = lop("results", "export", str(folder), "--compact", "--out", str(out), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def without_replicate(sweep: Path, to: Path, seed: int) -> Path:
    """A copy of `sweep` as if replicate `seed` had not started, its manifest asking for the others only."""
    copy = edited_copy(sweep, to, manifest=lambda m: {**m, "seed_start": 1 - seed, "seeds": 1, "arm_seeds": {}})
    for folder in copy.glob(f"*-r{seed}-*"):
        shutil.rmtree(folder)
    return copy


def test_a_compact_export_gives_the_report_of_its_sweep_folder(sweep, tmp_path, ray_env):
    export = compact_export(sweep, tmp_path / "fig1.parquet", ray_env)
    full = load_results(sweep)
    rows = pd.read_parquet(export)
    assert len(rows) == len(full[full["epoch"] == full["epochs_per_task"] - 1]) == 2 * 2 * 2  # arms x seeds x tasks
    assert export.stat().st_size < 100_000
    assert write_report([sweep], tmp_path / "from-folder") == []
    assert write_report([export], tmp_path / "from-export") == []
    for table in ("claims", "degradation", "steps"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "from-export" / "tables" / f"{table}.csv"),
                                      pd.read_csv(tmp_path / "from-folder" / "tables" / f"{table}.csv"))
    refused = lop("results", "export", str(sweep), "--compact", "--out", str(export), env=ray_env)
    assert refused.returncode == 2 and "exists; give another path or --force" in refused.stderr


def test_reading_a_sweep_never_imports_torch(sweep, tmp_path, ray_env):
    """status, export and report read files: torch would cost each of them seconds (it did for report)."""
    export = tmp_path / "fig1.parquet"
    assert not lop_imports_torch("sweep", "status", str(sweep), env=ray_env)
    assert not lop_imports_torch("results", "export", str(sweep), "--compact", "--out", str(export), env=ray_env)
    assert not lop_imports_torch("report", str(sweep), "--out", str(tmp_path / "a"), env=ray_env)
    assert not lop_imports_torch("report", str(export), "--out", str(tmp_path / "b"), env=ray_env)


def test_parts_of_a_sweep_merge_and_a_trial_given_twice_counts_once(sweep, tmp_path, ray_env):
    seed0 = compact_export(without_replicate(sweep, tmp_path / "a" / "fig1", 1), tmp_path / "seed0.parquet", ray_env)
    seed1 = without_replicate(sweep, tmp_path / "b" / "fig1", 0)
    assert write_report([sweep], tmp_path / "whole") == []
    lines: list[str] = []
    # seed 0 as an export, seed 1 as a folder, and the whole sweep again: every trial is in two sources
    assert write_report([seed0, seed1, sweep], tmp_path / "parts", echo=lines.append) == []
    whole = pd.read_csv(tmp_path / "whole" / "tables" / "degradation.csv")
    parts = pd.read_csv(tmp_path / "parts" / "tables" / "degradation.csv")
    assert (parts["n"] == 2).all()
    pd.testing.assert_frame_equal(parts, whole)
    counted_once = [line for line in lines if "counted once" in line]
    assert len(counted_once) == 4 and all("is in both" in line for line in counted_once)
    md = (tmp_path / "parts" / "report.md").read_text()
    assert "## Trials counted once" in md and "What is missing" not in md


def test_a_replicate_with_two_configurations_is_refused_naming_both(sweep, tmp_path):
    other = edited_copy(sweep, tmp_path / "fig1", lambda r: {**r, "lr": 0.5})
    problems = write_report([sweep, other], tmp_path / "report")
    assert len(problems) == 1 and "differs between" in problems[0] and "lr 0.01 vs 0.5" in problems[0]
    assert "report them separately" in problems[0]


def test_a_compact_export_of_another_schema_is_refused_with_the_fix(sweep, tmp_path, ray_env):
    import pyarrow.parquet as pq
    from analysis.compact import METADATA_KEY
    export = compact_export(sweep, tmp_path / "fig1.parquet", ray_env)
    table = pq.read_table(export)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    old = tmp_path / "old.parquet"
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps({**meta, "schema_version": 0})}), old)
    plain = tmp_path / "plain.parquet"
    pd.read_parquet(export).to_parquet(plain)
    out = tmp_path / "report"
    run = lop("report", str(old), str(plain), "--out", str(out), env=ray_env)
    assert run.returncode == 2 and not out.exists()
    assert "schema version 0, this lop reads version(s) 1, 2" in run.stderr and "re-export it" in run.stderr
    assert "is not a compact export" in run.stderr


def test_an_arm_run_under_another_sweep_fills_the_claims_that_name_it(sweep, tmp_path):
    """fig1's `mlp` arm is fig4's `baseline`: trials run as one serve the claims and figures of the other."""
    fig4 = edited_copy(sweep, tmp_path / "fig4", relabel({"mlp": {"sweep": "fig4", "arm": "baseline"}}),
                       lambda m: {**m, "sweep": "fig4", "arms": ["baseline"]})
    for folder in fig4.glob("lstm-*"):
        shutil.rmtree(folder)
    lines: list[str] = []
    assert write_report([fig4], tmp_path / "report", echo=lines.append) == []
    table = pd.read_csv(tmp_path / "report" / "tables" / "claims.csv").set_index("id")
    claim = table.loc["mlp-loses-plasticity-mnist-reshuffle"]
    assert claim["test"] == "fig1/mlp" and claim["n"] == 2 and claim["scale"] == "smoke"
    assert any("fig1/mlp: replicate(s) 0, 1 are the trials of fig4/baseline" in line for line in lines)
    # the LSTM was not run under any sweep: its claim stays not run
    assert table.loc["lstm-loses-plasticity-mnist-reshuffle", "verdict"] == "not run"
    degradation = pd.read_csv(tmp_path / "report" / "tables" / "degradation.csv")
    assert degradation["sweep"].tolist() == ["fig4"]  # a sweep not given gets no section of its own


def test_a_sweep_of_one_task_trials_still_gets_its_report(sweep, tmp_path, ray_env):
    """Degradation needs two tasks: the report says so and writes every other figure and table."""
    one = edited_copy(sweep, tmp_path / "one", row=lambda r: {**r, "tasks": 1},
                      manifest=lambda m: {**m, "tasks": m["trials"]})
    for result in one.glob("*/result.json"):
        rows = [line for line in result.read_text().splitlines() if line.strip() and json.loads(line)["task"] == 0]
        result.write_text("".join(line + "\n" for line in rows))
    out = tmp_path / "report"
    run = lop("report", str(one), "--out", str(out), env=ray_env)
    report = (out / "report.md").read_text()
    assert "degradation" in report.lower() and "needs at least 2 tasks" in report, report[:3000]
    assert (out / "figures" / "fig1-accuracy.png").exists() and (out / "tables" / "claims.csv").exists()
    assert run.returncode == 0, run.stderr[-2000:]
