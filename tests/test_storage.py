"""Sweep storage at a URI: `UriPath` against pyarrow filesystems, a whole sweep run, inspected, resumed and
exported through a `file://` URI, and a finished sweep read back from an in-memory bucket (pyarrow's mock
filesystem: the code path of s3:// and gs://, without their network clients)."""
from __future__ import annotations

import pandas as pd
import pyarrow._fs
import pyarrow.fs as pafs
import pytest

from lopmodels.errors import ConfigError
from sweeps.manifest import DriverLock, Manifest
from sweeps.storage import UriPath, location, write_text_atomic
from tests.processes import lop


def test_uri_path_reads_writes_and_lists_like_pathlib(tmp_path):
    root = location(f"file://{tmp_path}?unused=1")
    assert isinstance(root, UriPath) and root.local == tmp_path and str(root) == f"file://{tmp_path}?unused=1"
    folder = root / "sweep"
    assert folder.name == "sweep" and folder.parent == root and not folder.exists()
    folder.mkdir()
    (folder / "trial-a").mkdir()
    write_text_atomic(folder / "trial-a" / "result.json", '{"task": 0, "epoch": 0}\n')
    write_text_atomic(folder / "experiment_state-1.json", "{}")
    assert folder.is_dir() and (folder / "experiment_state-1.json").is_file()
    assert [p.name for p in folder.glob("experiment_state-*.json")] == ["experiment_state-1.json"]
    assert [str(p) for p in folder.glob("*/result.json")] == [f"file://{tmp_path}/sweep/trial-a/result.json?unused=1"]
    assert (tmp_path / "sweep" / "trial-a" / "result.json").read_text() == '{"task": 0, "epoch": 0}\n'
    assert sorted(p.name for p in tmp_path.joinpath("sweep").iterdir()) == ["experiment_state-1.json", "trial-a"]


def test_storage_forms():
    assert location("relative/dir").is_absolute()
    s3 = location("s3://bucket/lop-results?region=eu-west-1", contact=False)  # forms only: no network here
    assert isinstance(s3.fs, pafs.S3FileSystem) and s3.path == "bucket/lop-results" and s3.local is None
    assert str(s3 / "fig1") == "s3://bucket/lop-results/fig1?region=eu-west-1"
    with pytest.raises(ConfigError, match="cannot use storage 'nope://x'.*s3://bucket"):
        location("nope://x")


def test_bad_storage_uri_exits_2(tmp_path):
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--storage", "nope://bucket/x")
    assert run.returncode == 2 and "cannot use storage 'nope://bucket/x'" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_sweep_through_a_file_uri(tmp_path, ray_env):
    storage = f"file://{tmp_path}/results"
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--seeds", "1", "--arms", "mlp,lstm", "--storage", storage,
              env=ray_env)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = f"{storage}/fig1"
    assert f"lop sweep status {folder}" in run.stderr
    manifest = Manifest.read(location(folder))
    from sweeps.registry import SWEEPS
    assert manifest.trials == 2 and manifest.notes == SWEEPS["fig1"].notes["smoke"]  # the scale note travels with it
    status = lop("sweep", "status", folder, env=ray_env)
    assert status.returncode == 0 and "2 terminated" in status.stdout and "driver: not running" in status.stdout
    first = lop("results", "export", folder, "--out", str(tmp_path / "uri.parquet"), env=ray_env)
    local = lop("results", "export", str(tmp_path / "results" / "fig1"), "--out", str(tmp_path / "local.parquet"))
    assert first.returncode == 0 and local.returncode == 0, first.stderr + local.stderr
    frame = pd.read_parquet(tmp_path / "uri.parquet")
    assert len(frame) == 2 * 2
    pd.testing.assert_frame_equal(frame, pd.read_parquet(tmp_path / "local.parquet"))
    again = lop("sweep", "run", "fig1", "--scale", "smoke", "--storage", storage, env=ray_env)
    assert again.returncode == 2 and "already exists" in again.stderr
    # nothing left to do: said from the files through the URI, without starting Ray or writing anything
    local = tmp_path / "results" / "fig1"
    before = sorted(str(p) for p in local.rglob("*"))
    resumed = lop("sweep", "resume", folder, "--max-concurrent", "1", env=ray_env)
    assert resumed.returncode == 0 and "2 trials done, 0 errored; nothing to resume" in resumed.stderr, \
        resumed.stderr[-3000:]
    assert "Started a local Ray" not in resumed.stderr
    assert sorted(str(p) for p in local.rglob("*")) == before
    after = lop("results", "export", folder, "--out", str(tmp_path / "after.parquet"), env=ray_env)
    assert after.returncode == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "after.parquet"), frame)

    # the same sweep in a bucket: copied into pyarrow's in-memory filesystem and read back through it
    from sweeps.results import load_results
    from sweeps.status import sweep_status
    bucket = pyarrow._fs._MockFileSystem()
    bucket.create_dir("bucket/results")
    pafs.copy_files(str(tmp_path / "results"), "bucket/results", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=bucket)
    remote = UriPath("mock://bucket/results/fig1", bucket, "bucket/results/fig1")
    assert remote.local is None
    pd.testing.assert_frame_equal(load_results(remote), load_results(tmp_path / "results" / "fig1"))
    report = sweep_status(remote)
    assert "2 terminated" in report and "driver: unknown" in report
    with DriverLock(remote):  # no lock in a bucket, and no error either
        Manifest.read(remote).write(remote / "copy")
    assert Manifest.read(remote / "copy") == Manifest.read(remote)


# `lop` whose buckets never answer: the first lookup waits for ever, as gs:// does for a quarter of an hour with no
# network behind it (and deaf to Ctrl-C); the same on any machine, with or without a network
NEVER_ANSWERS = """
import os, sys, threading
from pathlib import Path
import fsspec
import pyarrow.fs as pafs
import sweeps.storage
from sweeps.cli import main


class NeverAnswers(fsspec.AbstractFileSystem):
    def info(self, path, **kwargs):
        Path(os.environ["LOP_TEST_ASKED"]).write_text(path)  # the test knows this bucket was asked, not gs://
        threading.Event().wait()


sweeps.storage.filesystem = lambda uri: (pafs.PyFileSystem(pafs.FSSpecHandler(NeverAnswers())), uri.split("://")[1])
main(sys.argv[1:])
"""


def test_a_bucket_that_does_not_answer_fails_within_the_contact_bound(tmp_path):
    """The first contact with a bucket is bounded (here 2 s): one line naming the scheme and what to check."""
    import os
    import subprocess
    import sys
    asked = tmp_path / "asked"
    env = {**os.environ, "LOP_STORAGE_TIMEOUT_S": "2", "LOP_TEST_ASKED": str(asked)}
    for args in (("sweep", "status", "gs://lop-no-such-bucket/fig1"),
                 ("sweep", "run", "fig1", "--scale", "smoke", "--storage", "gs://lop-no-such-bucket/runs")):
        asked.unlink(missing_ok=True)
        run = subprocess.run([sys.executable, "-c", NEVER_ANSWERS, *args], capture_output=True, text=True, env=env,
                             timeout=60)
        assert run.returncode == 2, run.stderr[-2000:]
        assert "did not answer within 2 s; check the network, the gs credentials" in run.stderr, run.stderr[-2000:]
        assert len(run.stderr.strip().splitlines()) == 1 and asked.read_text().startswith("lop-no-such-bucket/")
