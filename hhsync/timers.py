"""systemd timers as values: the units, the per-fabric drop-ins, and the bootstrap plan.

Nothing here writes files or runs systemctl (that is `hhsync/systemd.py`); it only reads its own
templates, package data in `hhsync/units/` (the repo's `systemd/` links there), and follows
symlinks in the paths it checks against /home and /tmp.

One templated pair serves every fabric: `hhsync-sync@FABRIC.timer` starts
`hhsync-sync@FABRIC.service`, which runs `hhsync --config CONFIG sync FABRIC`. What differs per
fabric (interval, randomised delay, run time limit) is in drop-ins named `hhsync.conf`. Those
drop-ins are the only files bootstrap-timers ever deletes (with their directory when left empty);
timers it stops are disabled through systemctl.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Literal

from hhsync.config import FABRIC_NAME, Config, FabricConfig
from hhsync.deadline import time_limit
from hhsync.durations import format_duration
from hhsync.errors import ConfigError

UNIT = "hhsync-sync"
SERVICE = f"{UNIT}@.service"
TIMER = f"{UNIT}@.timer"
DROPIN = "hhsync.conf"
WANTS = PurePosixPath("timers.target.wants")
START_SLACK = 15  # seconds for interpreter start-up and exit, beyond a run's own time limit
UNIT_NAME_MAX = 255  # systemd's limit on a unit name, instance included

# Settings a per-user service manager cannot apply: they need mount namespaces or capabilities it
# lacks, and would make every run fail (status 218/CAPABILITIES or 226/NAMESPACE) or be ignored.
USER_SKIPPED = frozenset(
    {
        "ProtectSystem",
        "ProtectHome",
        "ReadWritePaths",
        "PrivateTmp",
        "PrivateDevices",
        "PrivateUsers",
        "PrivateIPC",
        "PrivateMounts",
        "CapabilityBoundingSet",
        "AmbientCapabilities",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectClock",
        "ProtectHostname",
        "ProtectProc",
        "ProcSubset",
        "DevicePolicy",
        "RemoveIPC",
    }
)
HOMES = (Path("/home"), Path("/root"), Path("/run/user"))
PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))

Mode = Literal["system", "user", "offline"]


@dataclass(frozen=True)
class Program:
    """How systemd starts hhsync: an absolute command, and the directories its code lives in."""

    command: tuple[str, ...]
    code_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where units go: the running system, the user's manager, or an image root (offline)."""

    mode: Mode
    unit_dir: Path
    root: Path | None = None  # the image root, for mode "offline"

    def systemctl(self, *args: str) -> list[str]:
        """A systemctl command line for this target ("systemctl" is resolved when it runs)."""
        scope = {"system": [], "user": ["--user"], "offline": [f"--root={self.root}"]}[self.mode]
        return ["systemctl", *scope, *args]


@dataclass(frozen=True)
class Installed:
    """hhsync's files found in a unit directory: relative path -> text, and enabled instances."""

    files: Mapping[PurePosixPath, str] = field(default_factory=dict)
    enabled: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Write:
    path: PurePosixPath
    text: str


@dataclass(frozen=True)
class Remove:
    path: PurePosixPath


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]


Step = Write | Remove | Run


@dataclass(frozen=True)
class Bootstrap:
    """The whole change as a value: `steps` in order; `--dry-run` prints exactly these.

    `files` is every file the units consist of (relative path -> text), `unchanged` those of them
    already in place.
    """

    files: Mapping[PurePosixPath, str]
    steps: tuple[Step, ...]
    unchanged: tuple[PurePosixPath, ...]
    warnings: tuple[str, ...] = ()


def unit_name(fabric: str, suffix: Literal["service", "timer"]) -> str:
    """`hhsync-sync@FABRIC.SUFFIX`, or a ConfigError when FABRIC cannot be an instance as is."""
    name = f"{UNIT}@{fabric}.{suffix}"
    if not FABRIC_NAME.fullmatch(fabric):
        raise ConfigError(
            f'fabric "{fabric}" cannot be a systemd unit instance: '
            "rename it to match [a-z0-9][a-z0-9_-]*"
        )
    if len(f"{UNIT}@{fabric}.service") > UNIT_NAME_MAX:
        longest = UNIT_NAME_MAX - len(f"{UNIT}@.service")
        raise ConfigError(
            f'fabric "{fabric[:20]}…" is too long for a systemd unit name: '
            f"rename it to at most {longest} characters"
        )
    return name


def render_service(config: Config, program: Program, *, user: bool = False) -> str:
    """`hhsync-sync@.service` for this host: command, config path, credential, sandbox paths."""
    argv = [*program.command, "--config", str(_absolute(config.path)), "sync"]
    reads = [*_config_files(config), *program.code_dirs, Path(program.command[0])]
    writes = [config.run.state_dir] if config.run.state_dir else []
    if config.run.metrics_file:
        writes.append(config.run.metrics_file.parent)  # written atomically: a temp file beside it
    values = {
        "EXEC_START": " ".join(quote(arg, exec_line=True) for arg in argv) + " %i",
        "LOAD_CREDENTIAL": _credential_line(config),
        "PROTECT_HOME": "read-only" if _under(reads + writes, HOMES) else "yes",
        "READ_WRITE_PATHS": (
            "ReadWritePaths=" + " ".join(_optional(quote(str(_absolute(p)))) for p in writes)
            if writes
            else ""
        ),
    }
    text = _fill(_template(SERVICE), values)
    if user:
        text = _user_variant(text)
    return text


def render_timer() -> str:
    """`hhsync-sync@.timer`: the same for every host (per-fabric values are in the drop-in)."""
    return _template(TIMER)


def backstop(config: Config, fabric: FabricConfig) -> int:
    """TimeoutStartSec= in seconds: only reached when hhsync's own deadline did not stop the run.

    A run may wait `lock_wait` for the fabric's lock, works until its deadline (its own backstop
    fires a little later), then records the result on a budget of its own; START_SLACK more is
    for interpreter start-up and exit on a busy host.
    """
    return time_limit(config, fabric) + START_SLACK


def random_delay(fabric: FabricConfig) -> int:
    """RandomizedDelaySec= in seconds: a tenth of the interval, at most a minute.

    It spreads fabrics that share an interval so they do not all hit NetBox in the same second.
    """
    return min(fabric.interval // 10, 60)


def render_dropins(config: Config, fabric: FabricConfig) -> dict[PurePosixPath, str]:
    """The fabric's two drop-ins (relative path -> text): its interval and its run time limit."""
    header = (
        f"# Written by `hhsync bootstrap-timers` from [fabrics.{fabric.name}] of the config;\n"
        "# run it again after changing the config instead of editing this file.\n"
    )
    timer = (
        f"{header}[Timer]\n"
        f"OnUnitInactiveSec={format_duration(fabric.interval)}\n"
        f"RandomizedDelaySec={format_duration(random_delay(fabric))}\n"
    )
    service = (
        f"{header}[Service]\n"
        f"# deadline {format_duration(fabric.deadline)} + lock wait, backstop, recording, slack\n"
        f"TimeoutStartSec={format_duration(backstop(config, fabric))}\n"
    )
    return {
        dropin_path(fabric.name, "timer"): timer,
        dropin_path(fabric.name, "service"): service,
    }


def dropin_path(fabric: str, suffix: Literal["service", "timer"]) -> PurePosixPath:
    return PurePosixPath(f"{unit_name(fabric, suffix)}.d") / DROPIN


def desired_files(config: Config, program: Program, *, user: bool) -> dict[PurePosixPath, str]:
    """Every file bootstrap-timers writes: the two templates and each enabled fabric's drop-ins."""
    files = {
        PurePosixPath(SERVICE): render_service(config, program, user=user),
        PurePosixPath(TIMER): render_timer(),
    }
    for fabric in config.fabrics.values():
        if fabric.enabled:
            files.update(render_dropins(config, fabric))
    return files


def instance(path: PurePosixPath) -> str | None:
    """The fabric a drop-in path (`hhsync-sync@FABRIC.timer.d/...`) belongs to, if any."""
    m = re.fullmatch(rf"{UNIT}@([^/]+)\.(?:timer|service)\.d", path.parts[0])
    return m[1] if m else None


def plan_bootstrap(
    config: Config,
    program: Program,
    target: Target,
    installed: Installed,
    *,
    enable: bool = True,
    prune: bool = False,
) -> Bootstrap:
    """What bootstrap-timers does, in order: write, disable and remove stale, reload, enable.

    A fabric with `enabled = false` loses its timer on every run: the config asks for that. A
    fabric missing from the config loses it only with `prune`, as a typo in a fabric's name
    should not silently stop its syncs.
    """
    desired = desired_files(config, program, user=target.mode == "user")
    writes = [Write(p, t) for p, t in desired.items() if installed.files.get(p) != t]
    unchanged = tuple(p for p, t in desired.items() if installed.files.get(p) == t)
    wanted = {f.name for f in config.fabrics.values() if f.enabled}
    present = {n for p in installed.files if (n := instance(p))} | installed.enabled
    stale, kept, warnings = [], [], []
    for name in sorted(present - wanted):
        if name in config.fabrics or prune:
            stale.append(name)
        else:
            kept.append(name)
    if kept:
        warnings.append(
            f"timers of fabrics no longer in the config remain: {', '.join(kept)}; "
            "pass --prune to disable and remove them"
        )
    warnings += _sandbox_warnings(config, target)
    removes = [Remove(p) for p in sorted(installed.files) if instance(p) in stale]
    steps: list[Step] = [*writes]
    now = ["--now"] if target.mode != "offline" else []
    steps += [Run(tuple(target.systemctl("disable", *now, f"{UNIT}@{n}.timer"))) for n in stale]
    steps += removes
    if (writes or removes) and target.mode != "offline":
        steps.append(Run(tuple(target.systemctl("daemon-reload"))))
    if enable:
        steps += [
            Run(tuple(target.systemctl("enable", *now, unit_name(n, "timer"))))
            for n in sorted(wanted)
        ]
    return Bootstrap(desired, tuple(steps), unchanged, tuple(warnings))


def quote(word: str, *, exec_line: bool = False) -> str:
    """One word for a unit file (systemd.syntax(7)): quoted if needed, specifiers escaped.

    In Exec lines `$` starts a variable too, so it is doubled there. Control characters cannot be
    written safely at all, so they are refused.
    """
    if re.search(r"[\x00-\x1f\x7f]", word):
        raise ConfigError(f"path {word!r} contains a control character; rename it")
    escaped = word.replace("%", "%%")
    if exec_line:
        escaped = escaped.replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _optional(quoted: str) -> str:
    """A quoted path with systemd's "-" prefix (ignore a missing path), inside the quotes."""
    return f'"-{quoted[1:]}' if quoted.startswith('"') else f"-{quoted}"


def _credential_line(config: Config) -> str:
    token = config.netbox.token_file
    if token is None:
        return ""
    path = str(_absolute(token))
    # systemd takes the rest of the line as the path: it cannot hold a line break, surrounding
    # spaces (stripped) or a final backslash (which continues the line).
    if re.search(r"[\x00-\x1f\x7f]", path) or path != path.strip() or path.endswith("\\"):
        raise ConfigError(
            f"{config.path}: [netbox] token_file: {path!r} cannot be passed to systemd "
            "(control characters, surrounding spaces or a final backslash); rename the file"
        )
    return f"LoadCredential=netbox.token:{path.replace('%', '%%')}"


def _sandbox_warnings(config: Config, target: Target) -> list[str]:
    warnings = []
    if config.netbox.token_file is None:
        warnings.append(
            f"{config.path}: [netbox] has no token_file, so the units pass no NetBox token; "
            "set token_file, or add LoadCredential=netbox.token:PATH in a drop-in"
        )
    hidden = [str(_absolute(p)) for p in _config_files(config) if _under([p], PRIVATE_TMP)]
    if hidden and target.mode != "user":
        warnings.append(
            f"the service cannot see {', '.join(dict.fromkeys(hidden))}: PrivateTmp=yes gives it "
            "its own /tmp and /var/tmp; move these files elsewhere, e.g. to /etc/hhsync"
        )
    return warnings


def _config_files(config: Config) -> list[Path]:
    """Files a run reads through its config; loading the config checks every fabric's, even
    disabled ones, so all of them must be visible to the service."""
    files = [config.path]
    for fabric in config.fabrics.values():
        files += [p for p in (fabric.kubeconfig, fabric.source) if p is not None]
    if config.netbox.ca_bundle is not None:
        files.append(config.netbox.ca_bundle)
    return files


def _template(name: str) -> str:
    return (resources.files("hhsync") / "units" / name).read_text(encoding="utf-8")


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Replace each @NAME@ once (values are never re-scanned); drop lines left empty."""
    lines = []
    for line in template.splitlines():
        filled = re.sub(r"@([A-Z_]+)@", lambda m: values[m[1]], line)
        if filled or not line:
            lines.append(filled)
    return "\n".join(lines) + "\n"


def _user_variant(text: str) -> str:
    kept = [line for line in text.splitlines() if line.partition("=")[0] not in USER_SKIPPED]
    note = (
        "# --user: the settings that need privileges a user's service manager lacks (mount\n"
        "# namespaces, capability bounds) are left out; system units get the full sandbox.\n"
    )
    return note + "\n".join(kept) + "\n"


def _absolute(path: Path) -> Path:
    # Lexically normalised (systemd refuses "..") but not resolved: a venv's bin/python is a
    # symlink, and the command must keep naming the venv's copy.
    return Path(os.path.abspath(path))


def _under(paths: Sequence[Path], roots: Sequence[Path]) -> bool:
    """Whether any path, as written or with its symlinks followed, lies under one of `roots`."""
    seen = [_absolute(p) for p in paths] + [Path(os.path.realpath(p)) for p in paths]
    return any(p.is_relative_to(root) for p in seen for root in roots)
