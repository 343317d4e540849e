"""Reading rendered systemd units back, so tests run exactly what a unit would."""

from __future__ import annotations

import re
import shlex


def exec_start_argv(service_text: str, fabric: str) -> list[str]:
    """The argv systemd runs for `fabric`, read back from a rendered service's ExecStart= line.

    Reads only what `quote` writes (double quotes, backslash escapes, %% and $$), so a test can
    run exactly what the unit would.
    """
    line = next(x for x in service_text.splitlines() if x.startswith("ExecStart="))
    words = shlex.split(line.removeprefix("ExecStart="), posix=True)
    spec = {"%": "%", "i": fabric}
    return [re.sub(r"%(.)", lambda m: spec[m[1]], w).replace("$$", "$") for w in words]
