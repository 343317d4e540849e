"""The README's configuration table says what the declarations in hhsync/config.py say."""

from __future__ import annotations

from dataclasses import MISSING, Field
from pathlib import Path
from typing import Any

from hhsync.config import FabricConfig, NetboxConfig, RunConfig, keys

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| key | where | default | meaning |\n|---|---|---|---|\n"


def shown(f: Field[Any]) -> str:
    if f.metadata["shown"] is not None:
        return str(f.metadata["shown"])
    if f.default is MISSING:
        return "required"
    if f.default is None:
        return "-"
    if isinstance(f.default, bool):
        return f"`{str(f.default).lower()}`"
    if isinstance(f.default, str):
        return f"`{f.default}`"
    return str(f.default)


def table() -> str:
    rows = []
    for section, where in (
        (NetboxConfig, "`[netbox]`"),
        (FabricConfig, "fabric"),
        (RunConfig, "`[run]`"),
    ):
        for f in keys(section):
            place = "fabric/`[defaults]`" if f.metadata["defaults"] else where
            rows.append(f"| `{f.name}` | {place} | {shown(f)} | {f.metadata['meaning']} |\n")
    return HEADER + "".join(rows)


def test_the_readme_config_table_is_the_declared_keys() -> None:
    text = README.read_text()
    start = text.index(HEADER)
    end = text.index("\n\n", start) + 1
    assert text[start:end] == table(), "README's table should be:\n" + table()
