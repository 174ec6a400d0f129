"""Plain-text tables for the CLI."""

from __future__ import annotations


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns under a dashed rule, as every CLI table is printed."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
