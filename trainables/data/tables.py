"""Reading a local table of sentences (TSV, CSV or parquet, optionally .gz/.bz2) with Hugging Face
`datasets`, offline, with every requested column as strings.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .download import SourceFailed

FORMATS = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")


def table_format(path: Path) -> str:
    """'tsv', 'csv' or 'parquet', from the file's suffix (a compression suffix is skipped)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    if not suffixes or suffixes[-1] not in FORMATS:
        raise SourceFailed(f"cannot tell the format of {path.name}; name it *.tsv, *.csv or *.parquet")
    return FORMATS[suffixes[-1]]


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """`datasets` draws a progress bar per file; `lop data prepare` prints its own progress."""
    import datasets

    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def read_table(path: Path, columns: Sequence[str], names: Sequence[str] | None = None) -> pd.DataFrame:
    """The `columns` of the table at `path`, as strings; `names`: the file has no header, these are its columns.

    TSV is read unquoted (QUOTE_NONE), since sentences contain quote marks; nothing is read as NA.
    """
    import datasets  # costs most of a second to import; only preparing data needs it

    fmt = table_format(path)
    strings = datasets.Features({column: datasets.Value("string") for column in columns})
    with tempfile.TemporaryDirectory(prefix="lop-table-") as cache_dir, _quiet_progress():
        try:
            if fmt == "parquet":
                table = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache_dir)
                missing = [c for c in columns if c not in table.column_names]
                if missing:
                    raise SourceFailed(f"{path.name} lacks column(s) {', '.join(missing)}; "
                                       f"it has {', '.join(table.column_names)}")
                table = table.select_columns(list(columns)).cast(strings)
            else:
                options = {"delimiter": "\t", "quoting": 3} if fmt == "tsv" else {}
                if names is not None:
                    options.update(column_names=list(names), header=None)
                table = datasets.load_dataset("csv", data_files=str(path), split="train", cache_dir=cache_dir,
                                              usecols=list(columns), features=strings, na_filter=False, **options)
        except SourceFailed:
            raise
        except Exception as e:  # datasets wraps the reader's own error; report that one
            while e.__cause__ is not None:
                e = e.__cause__
            raise SourceFailed(f"cannot read {path} as {fmt}: {e}") from None
        return table.to_pandas()
