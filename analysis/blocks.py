"""A report as a list of blocks (headings, text, bullets, pictures, tables) that `analysis.render` turns into
markdown and HTML alike, so both pages say the same in the same order."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Picture:
    path: str  # relative to the report
    alt: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame  # cells formatted for reading
    files: tuple[str, ...]  # the CSV and markdown, relative to the report


Block = Heading | Text | Bullets | Picture | Table
