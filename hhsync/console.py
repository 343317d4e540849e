"""Tables for people: rich on a terminal, plain aligned lines for the journal and pipes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def table(console: Console, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if console.is_terminal:
        grid = Table(*columns, show_edge=False, header_style="bold")
        for row in rows:
            grid.add_row(*row)
        console.print(grid)
    else:
        for line in plain_lines(columns, rows):
            console.out(line, highlight=False)


def plain_lines(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(columns, *rows, strict=True)]
    lines = []
    for row in (columns, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def print_json(console: Console, data: Any) -> None:
    console.out(json.dumps(data, indent=2, sort_keys=True), highlight=False)
