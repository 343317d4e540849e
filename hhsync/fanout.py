"""Several fabrics at once: each in its own `hhsync sync FABRIC --json` process, `[run] parallel`
at a time, so a fabric that hangs can be stopped without holding up the others."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from hhsync import report
from hhsync.config import Config, FabricConfig
from hhsync.deadline import time_limit
from hhsync.mirror import Outcome


def run_children(
    config: Config, fabrics: list[FabricConfig], argv: list[str], verbose: int
) -> list[dict[str, Any]]:
    """The `sync --json` report of each fabric, its child given `argv` after its name."""
    children: set[subprocess.Popen[str]] = set()

    def one(fabric: FabricConfig) -> dict[str, Any]:
        command = [
            sys.executable,
            "-m",
            "hhsync",
            "--config",
            str(config.path),
            *(["-v"] * verbose or ["-q"]),  # -q: the parent already warned about the config
            "sync",
            fabric.name,
            "--json",
            *argv,
        ]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as child:
            children.add(child)
            try:
                out, err = child.communicate(timeout=time_limit(config, fabric))
            except subprocess.TimeoutExpired:
                child.kill()
                out, err = child.communicate()
            children.discard(child)
        sys.stderr.write(err)
        try:
            [found] = json.loads(out)["fabrics"]
            return dict(found)
        except (ValueError, KeyError, TypeError):
            error = f"its sync process ended with exit code {child.returncode} and no report"
            return report.outcome_json(Outcome(fabric.name, error=error))

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in list(children):
            child.send_signal(signum)

    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM,)} if main else {}
    try:
        with ThreadPoolExecutor(max_workers=config.run.parallel) as pool:
            return list(pool.map(one, fabrics))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
