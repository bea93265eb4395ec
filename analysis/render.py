"""The report's two renderers: report.md (figures by relative path) and report.html (one self-contained file,
figures embedded)."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from analysis import tables
from analysis.blocks import Block, Bullets, Heading, Picture, Table, Text

def render_markdown(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        match block:
            case Heading(text, level):
                parts.append(f"{'#' * level} {text}")
            case Text(text):
                parts.append(text)
            case Bullets(items):
                parts.append("\n".join(f"- {item}" for item in items))
            case Picture(path, alt):
                parts.append(f"![{alt}]({path})")
            case Table(frame, files):
                parts.append(tables.markdown(frame) + "\nAs files: " + ", ".join(f"[{f}]({f})" for f in files))
    return "\n\n".join(parts) + "\n"


CSS = ("body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.45}"
       "img{max-width:100%}table{border-collapse:collapse;font-size:90%;margin:1em 0}"
       "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
       "code{background:#f3f3f3;padding:0 .2em;border-radius:3px}")


CODE_SPAN = re.compile(r"`([^`]+)`")


def inline(text: object) -> str:
    """Text as HTML: escaped, with `code spans` as <code>."""
    return CODE_SPAN.sub(r"<code>\1</code>", html.escape(str(text)))


def data_uri(path: Path) -> str:
    """A PNG file as a data: URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{inline(column)}</th>" for column in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{inline(cell)}</td>" for cell in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(blocks: list[Block], root: Path) -> str:
    """One self-contained page: pictures (relative to `root`) embedded as data: URIs, code spans as <code>."""
    parts = []
    for block in blocks:
        match block:
            case Heading(text, level):
                parts.append(f"<h{level}>{inline(text)}</h{level}>")
            case Text(text):
                parts.append(f"<p>{inline(text)}</p>")
            case Bullets(items):
                parts.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
            case Picture(path, alt):
                parts.append(f'<p><img src="{data_uri(root / path)}" alt="{html.escape(alt)}"></p>')
            case Table(frame, files):
                links = ", ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
                parts.append(html_table(frame) + f"<p>As files beside this page: {links}</p>")
    title = next(block.text for block in blocks if isinstance(block, Heading))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")
