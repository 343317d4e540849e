"""Prometheus text-format metrics for node_exporter's textfile collector.

Each run rewrites only its own fabric's samples and keeps the other fabrics' (the file is shared
by every timer), under an flock, replacing the file atomically so a scrape never sees half of it.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from hhsync.errors import HhsyncError

HELP = {
    "hhsync_last_success_timestamp_seconds": "End of the last sync that applied its whole plan.",
    "hhsync_last_attempt_timestamp_seconds": "End of the last sync attempt.",
    "hhsync_last_result": "1 when the last attempt succeeded, else 0.",
    "hhsync_duration_seconds": "Duration of the last attempt.",
    "hhsync_objects": "Objects of the last attempt, by action.",
}
_SAMPLE = re.compile(r'^(\w+)\{fabric="((?:[^"\\]|\\.)*)"')


def render(
    fabric: str,
    *,
    attempt: datetime,
    success: datetime | None,
    ok: bool,
    seconds: float,
    counts: Mapping[str, int],
) -> list[str]:
    """This fabric's sample lines (no HELP/TYPE headers)."""
    label = f'fabric="{fabric}"'
    lines = [f"hhsync_last_attempt_timestamp_seconds{{{label}}} {attempt.timestamp():.0f}"]
    if success is not None:
        lines.append(f"hhsync_last_success_timestamp_seconds{{{label}}} {success.timestamp():.0f}")
    lines.append(f"hhsync_last_result{{{label}}} {int(ok)}")
    lines.append(f"hhsync_duration_seconds{{{label}}} {seconds:.3f}")
    lines += [f'hhsync_objects{{{label},action="{k}"}} {v}' for k, v in sorted(counts.items())]
    return lines


def merge(existing: str, fabric: str, lines: list[str]) -> str:
    """The file's new text: other fabrics' samples kept, this fabric's replaced."""
    samples = [
        line for line in existing.splitlines() if (m := _SAMPLE.match(line)) and m[2] != fabric
    ] + lines
    out = []
    for name, text in HELP.items():
        mine = sorted(s for s in samples if s.startswith(name + "{"))
        if mine:
            out += [f"# HELP {name} {text}", f"# TYPE {name} gauge", *mine]
    return "\n".join(out) + "\n"


def write(path: Path, fabric: str, lines: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            existing = path.read_text() if path.exists() else ""
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "w") as out:
                out.write(merge(existing, fabric, lines))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError as e:
        raise HhsyncError(f"cannot write the metrics file {path}: {e.strerror}") from None
