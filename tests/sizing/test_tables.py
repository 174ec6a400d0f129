"""The CLI's tables fit the terminal: cells wrap at spaces, the columns a caller can spare are left out (and named)
when whole words do not fit, a long word is broken only when nothing else fits, and every column has a header."""

from __future__ import annotations

import os
import shutil

import pytest

from sizing.cli.tables import table, terminal_width

HEADERS = ["machine type", "pricing", "min", "USD/month", "reason"]
ROWS = [
    ["e2-standard-2", "on-demand", "2", "117.84", ""],
    [
        "e2-standard-2",
        "spot",
        "2",
        "59.12",
        "hyperstudy-infra:nodes.allow_spot: spot nodes are not allowed in this stack",
    ],
    ["n2d-standard-2", "spot", "-", "-", "no placement of the stack's pods on 3 nodes survives the loss of one node"],
]


def _words(text: str) -> list[str]:
    return text.split()


def _cells(text: str) -> list[list[str]]:
    """The table read back: the dashed rule gives the columns' spans; a row starts where the first column has text,
    and a cell's wrapped lines join with spaces."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) <= {"-", " "} and line)
    spans, at = [], 0
    for dashes in lines[rule].split("  "):
        spans.append((at, at + len(dashes)))
        at += len(dashes) + 2
    rows: list[list[str]] = []
    for index, line in enumerate(lines):
        if line.startswith("(not shown"):
            break
        if index == rule:
            continue
        parts = [line[a:b].strip() for a, b in spans]
        if index == 0 or (parts[0] and index > rule):
            rows.append(parts)
        else:
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], parts, strict=True)]
    return rows


def _squeezed(cell: str) -> str:
    return "".join(cell.split())


def test_unbounded_is_the_layout_tables_always_had() -> None:
    """Each column as wide as its widest cell, two spaces apart, a dashed rule under the headers, a row a line."""
    widths = [max(len(c) for c in column) for column in zip(HEADERS, *ROWS, strict=True)]
    expected = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [HEADERS, *ROWS]]
    expected.insert(1, "  ".join("-" * w for w in widths))
    assert table(HEADERS, ROWS, width=1000).splitlines() == expected


@pytest.mark.parametrize("width", [50, 60, 80, 100, 120])
def test_every_line_fits_and_no_character_is_lost(width: int) -> None:
    text = table(HEADERS, ROWS, width=width, drop=["pricing"])
    assert max(len(line) for line in text.splitlines()) <= width
    got = _cells(text)
    kept = [i for i, h in enumerate(HEADERS) if not (h == "pricing" and "not shown" in text)]
    # Read back column by column, every cell holds what it was given (a wrapped or broken word moves, nothing drops).
    assert [[_squeezed(c) for c in row] for row in got] == [
        [_squeezed(row[i]) for i in kept] for row in [HEADERS, *ROWS]
    ]


def test_a_column_is_left_out_only_when_whole_words_do_not_fit_and_it_is_named() -> None:
    wide = table(HEADERS, ROWS, width=120, drop=["pricing"])
    assert "pricing" in wide.splitlines()[0] and "left out" not in wide
    narrow = table(HEADERS, ROWS, width=70, drop=["pricing"])
    assert "pricing" not in narrow.splitlines()[0] and "on-demand" not in narrow
    assert narrow.splitlines()[-1] == "(not shown in 70 columns: pricing; -o json has them)"


def test_words_are_kept_whole_while_they_fit() -> None:
    text = table(HEADERS, ROWS, width=90)
    reason_words = {w for row in ROWS for w in _words(row[4])}
    cells = {w for line in text.splitlines()[2:] for w in line.split()}
    assert reason_words <= cells  # wrapped at spaces only: each word whole on some line


def test_the_first_column_never_wraps() -> None:
    text = table(HEADERS, ROWS, width=40)
    assert all(any(line.startswith(row[0]) for line in text.splitlines()) for row in ROWS)


def test_a_header_is_required_for_every_column() -> None:
    with pytest.raises(ValueError, match="header"):
        table(["pod", ""], [["a", "b"]])
    with pytest.raises(ValueError, match="not in the table"):
        table(["pod"], [["a"]], drop=["state"])


def test_terminal_width_reads_columns_and_is_unbounded_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "77")
    assert terminal_width() == 77

    def no_terminal(fd: int = 1) -> os.terminal_size:
        raise OSError("not a terminal")

    monkeypatch.delenv("COLUMNS")
    monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    assert shutil.get_terminal_size(fallback=(0, 0)).columns == 0
    assert terminal_width() is None
