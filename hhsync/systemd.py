"""The edge of bootstrap-timers: where units go, what is there, and carrying out a plan.

Everything decided is in `hhsync/timers.py`; this module only reads and writes files and runs
systemctl, in the order the plan gives.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import hhsync
from hhsync.errors import HhsyncError, UsageError
from hhsync.timers import (
    DROPIN,
    SERVICE,
    TIMER,
    UNIT,
    WANTS,
    Bootstrap,
    Installed,
    Program,
    Remove,
    Run,
    Target,
    Write,
)

SYSTEM_UNIT_DIR = PurePosixPath("etc/systemd/system")
SYSTEMCTL_TIMEOUT = 120  # seconds; enabling a timer takes well under one


def this_program() -> Program:
    """The hhsync being run: its console script beside the interpreter, else `python -m hhsync`."""
    python = Path(os.path.abspath(sys.executable))
    script = python.parent / "hhsync"
    command = (str(script),) if os.access(script, os.X_OK) else (str(python), "-m", "hhsync")
    package = Path(hhsync.__file__).parent
    return Program(command, (Path(sys.prefix), Path(sys.base_prefix), package))


def find_target(unit_dir: Path | None, *, user: bool, dry_run: bool) -> Target:
    """The units' destination from --unit-dir/--user; the live system needs root unless dry-run."""
    if user and unit_dir is not None:
        raise UsageError(
            "--user and --unit-dir cannot be combined: use --user for your own service manager, "
            "or --unit-dir for an image root"
        )
    if user:
        config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Target("user", Path(config_home) / "systemd" / "user")
    if unit_dir is not None:
        path = Path(os.path.abspath(unit_dir))
        if not path.is_dir():
            raise UsageError(f"--unit-dir {path}: no such directory")
        # Either the image's etc/systemd/system itself, or the image root that holds it.
        tail = len(SYSTEM_UNIT_DIR.parts)
        is_unit_dir = path.parts[-tail:] == SYSTEM_UNIT_DIR.parts
        root = Path(*path.parts[:-tail]) if is_unit_dir else path
        if root != Path("/"):
            return Target("offline", root / SYSTEM_UNIT_DIR, root)
    if not dry_run and os.geteuid() != 0:
        raise UsageError(
            "writing system units to /etc/systemd/system needs root: run it with sudo, "
            "or pass --user for units of your own user's service manager"
        )
    return Target("system", Path("/") / SYSTEM_UNIT_DIR)


def scan(target: Target) -> Installed:
    """hhsync's own files in the unit directory, and the fabrics whose timers are enabled."""
    base = target.unit_dir
    paths = [PurePosixPath(SERVICE), PurePosixPath(TIMER)]
    paths += [PurePosixPath(d.name) / DROPIN for d in sorted(base.glob(f"{UNIT}@?*.d"))]
    files = {}
    for path in paths:
        try:
            files[path] = (base / path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError as e:
            raise HhsyncError(f"cannot read {base / path}: {e.strerror}") from None
    links = (base / WANTS).glob(f"{UNIT}@?*.timer")
    enabled = frozenset(p.name.removeprefix(f"{UNIT}@").removesuffix(".timer") for p in links)
    return Installed(files, enabled)


def preview(plan: Bootstrap, target: Target) -> Iterator[str]:
    """--dry-run: every file with its content and every command, in the order apply would go."""
    for path in plan.unchanged:
        yield f"unchanged    {target.unit_dir / path}"
        yield from _indented(plan.files[path])
    for step in plan.steps:
        if isinstance(step, Write):
            yield f"would write  {target.unit_dir / step.path}"
            yield from _indented(step.text)
        elif isinstance(step, Remove):
            yield f"would remove {target.unit_dir / step.path}"
        else:
            yield f"would run    {shlex.join(step.argv)}"
    yield f"dry run, nothing changed: {_summary(plan)}"


def apply(plan: Bootstrap, target: Target) -> Iterator[str]:
    """Carry out the plan, one output line per file and command as each is done."""
    systemctl = _systemctl() if any(isinstance(s, Run) for s in plan.steps) else "systemctl"
    for path in plan.unchanged:
        yield f"unchanged {target.unit_dir / path}"
    for step in plan.steps:
        if isinstance(step, Write):
            write_atomic(target.unit_dir / step.path, step.text)
            yield f"wrote     {target.unit_dir / step.path}"
        elif isinstance(step, Remove):
            remove(target.unit_dir / step.path)
            yield f"removed   {target.unit_dir / step.path}"
        else:
            run(step.argv, systemctl)
            yield f"ran       {shlex.join(step.argv)}"
    yield _summary(plan)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so systemd never reads half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A dot name: systemd ignores hidden files if it reloads before the rename.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise HhsyncError(f"cannot write {path}: {e.strerror}") from None


def remove(path: Path) -> None:
    """Delete one of hhsync's drop-ins, and its directory if nothing else is left in it."""
    try:
        path.unlink(missing_ok=True)
        if path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()
    except OSError as e:
        raise HhsyncError(f"cannot remove {path}: {e.strerror}") from None


def run(argv: Sequence[str], systemctl: str) -> None:
    """Run one systemctl command with the `systemctl` found; its message becomes the error."""
    try:
        done = subprocess.run(
            [systemctl, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=SYSTEMCTL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise HhsyncError(
            f"{shlex.join(argv)} did not finish in {SYSTEMCTL_TIMEOUT}s: check `systemctl status`"
        ) from None
    except OSError as e:
        raise HhsyncError(f"cannot run {systemctl}: {e.strerror}") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        detail = f": {said[-1]}" if said else ""
        raise HhsyncError(f"{shlex.join(argv)} failed with exit code {done.returncode}{detail}")


def _systemctl() -> str:
    found = shutil.which("systemctl")
    if found is None:
        raise HhsyncError(
            "systemctl is not on PATH, and bootstrap-timers needs it to enable the timers: "
            "install systemd, or only write the files with --unit-dir ROOT --no-enable"
        )
    return found


def _indented(text: str) -> Iterator[str]:
    return (f"    {line}".rstrip() for line in text.splitlines())


def _summary(plan: Bootstrap) -> str:
    written = sum(isinstance(s, Write) for s in plan.steps)
    removed = sum(isinstance(s, Remove) for s in plan.steps)
    if not written and not removed:
        return f"no changes ({len(plan.unchanged)} files unchanged)"
    return f"{written} written, {removed} removed, {len(plan.unchanged)} unchanged"


def next_runs(user: bool = False) -> dict[str, datetime]:
    """When each hhsync timer fires next, by fabric; empty where systemd is not running."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return {}
    argv = [
        systemctl,
        *(["--user"] if user else []),
        "list-timers",
        "--all",
        "--output=json",
        "--no-pager",
        "hhsync-sync@*.timer",
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT, check=False
        )
    except (subprocess.TimeoutExpired, OSError):
        return {}
    return parse_timers(done.stdout) if done.returncode == 0 else {}


def parse_timers(text: str) -> dict[str, datetime]:
    """`systemctl list-timers --output=json`: [{"unit": ..., "next": usec since epoch}, ...]."""
    try:
        timers = json.loads(text)
    except ValueError:
        return {}
    out = {}
    for timer in timers if isinstance(timers, list) else ():
        unit = re.fullmatch(r"hhsync-sync@(.+)\.timer", str(timer.get("unit", "")))
        usec = timer.get("next")
        if unit and isinstance(usec, int) and usec > 0:
            out[unit[1]] = datetime.fromtimestamp(usec / 1_000_000, UTC)
    return out
