"""Plain-text tables for the CLI, fitted to the terminal's width.

A table wider than the terminal wraps its cells at spaces, leaving out the columns its caller named as the least
needed (and saying which) when whole words do not fit; only then is a word longer than `LONG_WORD` broken. The first
column (what the row is about) never wraps. Output that is not a terminal (a pipe, a file) is never wrapped unless
`COLUMNS` is set: a script reading the text gets a row per line.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

GAP = "  "
# A word longer than this may be broken in a wrapped column (a long flag, an instant); shorter ones stay whole.
LONG_WORD = 16


def terminal_width() -> int | None:
    """The columns to fit: `COLUMNS`, else the terminal's; None (no limit) when stdout is not a terminal."""
    columns = shutil.get_terminal_size(fallback=(0, 0)).columns
    return columns if columns > 0 else None


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + len(GAP) * (len(widths) - 1)


def _shortest(column: Sequence[str], first: bool, hard: bool) -> int:
    """The narrowest a column may be: its longest word (`hard`: a word longer than LONG_WORD broken), the first
    column never wrapped."""
    if first:
        return max(len(cell) for cell in column)
    header = max((len(word) for word in column[0].split()), default=1)
    longest = max((len(word) for cell in column for word in cell.split()), default=1)
    return max(header, min(longest, LONG_WORD) if hard else longest)


def _lines(cell: str, width: int) -> list[str]:
    if len(cell) <= width:
        return [cell]
    import textwrap  # only a table wider than the terminal pays for it

    return textwrap.wrap(cell, width=width, break_long_words=True, break_on_hyphens=False) or [""]


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None = None,
    drop: Sequence[str] = (),
) -> str:
    """Left-aligned columns under a dashed rule, as every CLI table is printed.

    `width`: the columns to fit (default: `terminal_width()`); `drop`: headers of the columns that may be left out,
    the least needed first, when wrapping alone does not fit them.
    """
    if not all(h.strip() for h in headers):
        raise ValueError(f"every column needs a header: {list(headers)}")
    unknown = [h for h in drop if h not in headers]
    if unknown:
        raise ValueError(f"cannot drop columns that are not in the table: {unknown}")
    columns = [[str(h), *(str(row[i]) for row in rows)] for i, h in enumerate(headers)]
    if any(len(row) != len(headers) for row in rows):
        raise ValueError("every row needs a cell for each header")
    limit = terminal_width() if width is None else width
    natural = [max(len(cell) for cell in column) for column in columns]
    keep = list(range(len(headers)))
    dropped: list[str] = []
    widths = {i: natural[i] for i in keep}
    if limit is not None and _total(natural) > limit:
        # Whole words first, leaving out the columns the caller can spare; words broken only when that is not enough.
        for header in drop:
            if _total([_shortest(columns[i], i == 0, hard=False) for i in keep]) <= limit:
                break
            keep.remove(headers.index(header))
            dropped.append(header)
            del widths[headers.index(header)]
        hard = _total([_shortest(columns[i], i == 0, hard=False) for i in keep]) > limit
        shortest = {i: _shortest(columns[i], i == 0, hard) for i in keep}
        while _total(list(widths.values())) > limit:
            # Narrow the widest column that can still give, one character at a time: short columns stay whole.
            room = [i for i in keep if widths[i] > shortest[i]]
            if not room:
                break
            widest = max(room, key=lambda i: (widths[i], widths[i] - shortest[i]))
            widths[widest] -= 1
    out = []
    for r in range(len(rows) + 1):
        cells = [_lines(columns[i][r], widths[i]) for i in keep]
        for line in range(max(len(c) for c in cells)):
            parts = [(c[line] if line < len(c) else "").ljust(widths[i]) for c, i in zip(cells, keep, strict=True)]
            out.append(GAP.join(parts).rstrip())
        if r == 0:
            out.append(GAP.join("-" * widths[i] for i in keep))
    if dropped:
        note = f"(not shown in {limit} columns: {', '.join(dropped)}; -o json has them)"
        out += _lines(note, max(limit or 0, 20))
    return "\n".join(out)
