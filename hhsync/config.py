"""The TOML configuration: where it is looked up, what it may contain, and its error messages.

Every error names the file and either the line (TOML syntax) or the key path (values), e.g.
``config.toml: [fabrics.dc1] interval: expected a duration like "5m", "300s" or 300, got "5 min"``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from hhsync.durations import parse_duration
from hhsync.errors import ConfigError

FABRIC_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
DEFAULT_PATHS = (Path("/etc/hhsync/config.toml"), Path("~/.config/hhsync/config.toml"))
TOKEN_ENV = "HHSYNC_NETBOX_TOKEN"
CREDENTIAL_NAME = "netbox.token"


class Secret(str):
    """A string that never shows itself in reprs, logs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('***')"


def key(
    convert: str,
    meaning: str,
    *,
    default: Any = MISSING,
    shown: str | None = None,
    defaults: bool = False,
) -> Any:
    """A configuration key, declared once as a field of its section's dataclass: `convert` names
    the `_Reader` method that checks its value, `meaning` is the README's one line, `shown` the
    default as the README gives it, and `defaults` whether `[defaults]` may set it too."""
    meta = {"convert": convert, "meaning": meaning, "shown": shown, "defaults": defaults}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class NetboxConfig:
    url: str = key("url", "NetBox base URL")
    token_file: Path | None = key(
        "path_value",
        "file holding the API token (v1 or v2 `nbt_...`); `HHSYNC_NETBOX_TOKEN` or a systemd "
        "credential `netbox.token` take precedence; a file readable by others gives a warning",
        default=None,
    )
    verify_tls: bool = key(
        "boolean",
        "TLS verification (a self-signed NetBox is refused with a message saying to set "
        "`ca_bundle`); `false` works but warns on every run",
        default=True,
    )
    ca_bundle: Path | None = key("existing_file", "a private CA for NetBox's TLS", default=None)
    timeout: float = key("seconds", "seconds per NetBox request", default=30.0, shown="30")


@dataclass(frozen=True)
class FabricConfig:
    name: str  # the [fabrics.NAME] table's name
    site: str = key("slug", "NetBox site slug (created if missing); one fabric per site")
    kubeconfig: Path | None = key(
        "existing_file",
        "the fabric's Kubernetes API (exactly one of `kubeconfig` or `source`)",
        default=None,
    )
    context: str | None = key("string", "the kubeconfig's context to use", default=None)
    source: Path | None = key(
        "source",
        '`"file:PATH"`: YAML files (multi-document, `kind: List`, `kubectl get -o yaml`, '
        "hhfab wiring) instead of a Kubernetes API",
        default=None,
    )
    namespace: str = key(
        "string", "namespace of the Hedgehog objects", default="default", defaults=True
    )
    interval: int = key(
        "duration",
        'sync cadence: `300`, `"300s"`, `"5m"`, `"1h30m"`',
        default=300,
        shown="`5m`",
        defaults=True,
    )
    deadline: int = key(
        "duration",
        "a run stops by then",
        default=240,
        shown="4/5 of interval",
        defaults=True,
    )
    enabled: bool = key(
        "boolean",
        "`sync --all` and the timers skip disabled fabrics",
        default=True,
        defaults=True,
    )
    adopt: bool = key(
        "boolean",
        "take over unowned NetBox objects with the same natural key",
        default=False,
        defaults=True,
    )
    max_delete_fraction: float = key(
        "fraction",
        "refuse a plan deleting more of the owned objects",
        default=0.5,
        defaults=True,
    )
    heartbeat_stale: int = key(
        "duration",
        "Agent heartbeat age that marks a switch offline",
        default=180,
        shown="`3m`",
        defaults=True,
    )
    timeout: float = key(
        "seconds", "seconds per Kubernetes request", default=30.0, shown="30", defaults=True
    )
    branch: str = key(
        "branch_mode",
        'where a run writes: `"off"` into main; `"review"` into a NetBox branch that a person '
        'merges; `"merge"` into a branch hhsync merges once the whole plan is in '
        "(netbox-branching plugin)",
        default="off",
        shown='`"off"`',
        defaults=True,
    )
    retire_after: int = key(
        "wait",
        "an owned object whose source left the fabric is first retired (status decommissioning "
        "or deprecated, interfaces disabled) and deleted this long after; `0s` deletes at once",
        default=0,
        shown='`"0s"`',
        defaults=True,
    )


BRANCH_MODES = ("off", "review", "merge")


@dataclass(frozen=True)
class RunConfig:
    parallel: int = key("positive_int", "fabrics that `sync --all` runs at once", default=4)
    lock_wait: int = key(
        "wait",
        "how long a run waits for another run of its fabric before exiting 3",
        default=30,
        shown="`30s`",
    )
    state_dir: Path | None = key(
        "path_value",
        "where the fabrics' lock files live (default: `$STATE_DIRECTORY`, `/var/lib/hhsync` or "
        "`~/.local/state/hhsync`)",
        default=None,
    )
    metrics_file: Path | None = key(
        "path_value",
        "Prometheus text file for node_exporter's textfile collector",
        default=None,
    )


@dataclass(frozen=True)
class Config:
    path: Path
    netbox: NetboxConfig
    fabrics: Mapping[str, FabricConfig]
    run: RunConfig = RunConfig()
    warnings: tuple[str, ...] = field(default=())

    def fabric(self, name: str) -> FabricConfig:
        try:
            return self.fabrics[name]
        except KeyError:
            known = ", ".join(self.fabrics) or "none"
            raise ConfigError(f'{self.path}: no fabric "{name}" (configured: {known})') from None


SECTIONS: dict[str, type] = {"[netbox]": NetboxConfig, "fabric": FabricConfig, "[run]": RunConfig}


def keys(section: type) -> list[Field[Any]]:
    """The configuration keys of a section's dataclass, in declaration order."""
    return [f for f in fields(section) if "convert" in f.metadata]


def find_config(explicit: Path | None) -> Path:
    """The config file to use: --config, else $HHSYNC_CONFIG, else the first default that exists."""
    if explicit is not None:
        return explicit
    if env := os.environ.get("HHSYNC_CONFIG"):
        return Path(env)
    for candidate in DEFAULT_PATHS:
        if candidate.expanduser().exists():
            return candidate.expanduser()
    looked = ", ".join(str(p) for p in DEFAULT_PATHS)
    raise ConfigError(
        f"no configuration file: pass --config or set HHSYNC_CONFIG (looked in {looked})"
    )


def load_config(path: Path) -> Config:
    """Read and validate the configuration file at `path`."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration file: {e.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the configuration file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(_toml_error(path, e)) from None
    return _Reader(path).config(doc)


def load_token(netbox: NetboxConfig, config_path: Path) -> Secret:
    """The NetBox API token: systemd credential, else $HHSYNC_NETBOX_TOKEN, else `token_file`."""
    if creds := os.environ.get("CREDENTIALS_DIRECTORY"):
        credential = Path(creds) / CREDENTIAL_NAME
        if credential.exists():
            return _read_token(credential, f"systemd credential {credential}")
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return _one_word(token, TOKEN_ENV)
    if netbox.token_file is None:
        raise ConfigError(
            f"{config_path}: [netbox] token_file: required when {TOKEN_ENV} is not set"
        )
    return _read_token(netbox.token_file, f"{config_path}: [netbox] token_file")


def token_file_warning(path: Path) -> str | None:
    """A warning when the token file can be read by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"token file {path} is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    return None


def _read_token(path: Path, where: str) -> Secret:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{where}: file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: file {path} is not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {path}: {e.strerror}") from None
    if not token:
        raise ConfigError(f"{where}: file {path} is empty")
    return _one_word(token, f"{where}: file {path}")


def _one_word(token: str, where: str) -> Secret:
    """A token is one word: anything more would reach the Authorization header, and errors."""
    if any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(f"{where}: the token must be one line without spaces (not shown)")
    return Secret(token)


def _toml_error(path: Path, e: tomllib.TOMLDecodeError) -> str:
    # tomllib puts the position in the message ("Invalid value (at line 2, column 5)").
    message = str(e)
    if m := re.search(r"\s*\(at line (\d+), column (\d+)\)$", message):
        return f"{path}:{m[1]}:{m[2]}: invalid TOML: {message[: m.start()]}"
    if m := re.search(r"\s*\(at end of document\)$", message):
        return f"{path}: invalid TOML at end of document: {message[: m.start()]}"
    return f"{path}: invalid TOML: {message}"


Convert = Callable[[Any, str], Any]


class _Reader:
    """Validates one parsed document; `where` strings look like ``[fabrics.dc1] interval``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}")

    def config(self, doc: dict[str, Any]) -> Config:
        self.check_keys(doc, "", {"netbox", "defaults", "fabrics", "run"})
        netbox = self.netbox(self.table(doc, "netbox", required=True))
        defaults = self.fabric_values(self.table(doc, "defaults"), "[defaults]")
        run = self.run(self.table(doc, "run"))
        fabrics = self.fabrics(self.table(doc, "fabrics", required=True), defaults)
        warnings = []
        if netbox.token_file and (warning := token_file_warning(netbox.token_file)):
            warnings.append(warning)
        if not netbox.verify_tls and netbox.url.startswith("https:"):
            warnings.append(
                f"TLS verification of NetBox is off ([netbox] verify_tls = false in {self.path}): "
                "anyone in the path can read the token; set ca_bundle instead"
            )
        return Config(self.path, netbox, fabrics, run, tuple(warnings))

    def table(self, doc: dict[str, Any], name: str, required: bool = False) -> dict[str, Any]:
        if name not in doc:
            if required:
                raise self.fail(f"[{name}]", "required section is missing")
            return {}
        value = doc[name]
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", f"expected a table, got {_show(value)}")
        return value

    def check_keys(self, table: dict[str, Any], section: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                where = f"{section} {key}".strip()
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
                raise self.fail(where, f"unknown key{suggestion}")

    def take(
        self, table: dict[str, Any], section: str, allowed: list[Field[Any]]
    ) -> dict[str, Any]:
        """The table's values, each checked by the converter its key declares."""
        converters: dict[str, Convert] = {
            f.name: getattr(self, f.metadata["convert"]) for f in allowed
        }
        self.check_keys(table, section, set(converters))
        return {key: converters[key](table[key], f"{section} {key}") for key in table}

    def netbox(self, table: dict[str, Any]) -> NetboxConfig:
        values = self.take(table, "[netbox]", keys(NetboxConfig))
        if "url" not in values:
            raise self.fail("[netbox] url", "required")
        return NetboxConfig(**values)

    def run(self, table: dict[str, Any]) -> RunConfig:
        return RunConfig(**self.take(table, "[run]", keys(RunConfig)))

    def fabric_values(self, table: dict[str, Any], section: str) -> dict[str, Any]:
        return self.take(table, section, [f for f in keys(FabricConfig) if f.metadata["defaults"]])

    def fabrics(self, table: dict[str, Any], defaults: dict[str, Any]) -> dict[str, FabricConfig]:
        fabrics: dict[str, FabricConfig] = {}
        sites: dict[str, str] = {}
        for name, body in table.items():
            section = f"[fabrics.{name}]"
            if not FABRIC_NAME.fullmatch(name):
                raise self.fail(
                    section,
                    "fabric names must match [a-z0-9][a-z0-9_-]* "
                    "(lower-case letters, digits, '-' and '_')",
                )
            if not isinstance(body, dict):
                raise self.fail(section, f"expected a table, got {_show(body)}")
            values = {**defaults, **self.take(body, section, keys(FabricConfig))}
            fabric = self.fabric(name, section, values)
            if fabric.site in sites:
                raise self.fail(
                    f"{section} site",
                    f'site "{fabric.site}" is already used by fabric "{sites[fabric.site]}"; '
                    "each fabric needs its own site",
                )
            sites[fabric.site] = name
            fabrics[name] = fabric
        return fabrics

    def fabric(self, name: str, section: str, values: dict[str, Any]) -> FabricConfig:
        if "site" not in values:
            raise self.fail(f"{section} site", "required (the NetBox site slug for this fabric)")
        if ("kubeconfig" in values) == ("source" in values):
            raise self.fail(section, 'set exactly one of "kubeconfig" or "source"')
        if "context" in values and "source" in values:
            raise self.fail(f"{section} context", 'only valid with "kubeconfig"')
        if "deadline" not in values:
            # A run must end well before the next timer fires.
            values["deadline"] = max(1, values.get("interval", FabricConfig.interval) * 4 // 5)
        if values["deadline"] > values.get("interval", FabricConfig.interval):
            raise self.fail(f"{section} deadline", "must not be longer than the interval")
        return FabricConfig(name=name, **values)

    # Converters: each takes (value, where) and returns the typed value or raises.

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"expected a non-empty string, got {_show(value)}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_show(value)}")
        return value

    def positive_int(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(where, f"expected a whole number >= 1, got {_show(value)}")
        return value

    def fraction(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(where, f"expected a number from 0 to 1, got {_show(value)}")
        return float(value)

    def seconds(self, value: Any, where: str) -> float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= 0:
            raise self.fail(where, f"expected a number of seconds > 0, got {_show(value)}")
        return float(value)

    def duration(self, value: Any, where: str) -> int:
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            raise self.fail(
                where, f'expected a duration like "5m", "300s" or 300, got {_show(value)}'
            )
        return seconds

    def wait(self, value: Any, where: str) -> int:
        """A duration that may be 0 (do not wait)."""
        seconds = parse_duration(value)
        if seconds is None or seconds < 0:
            raise self.fail(where, f'expected a duration like "30s", "1m" or 0, got {_show(value)}')
        return seconds

    def branch_mode(self, value: Any, where: str) -> str:
        if value not in BRANCH_MODES:
            choices = ", ".join(f'"{m}"' for m in BRANCH_MODES)
            raise self.fail(where, f"expected one of {choices}, got {_show(value)}")
        return str(value)

    def slug(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9_-]+", value):
            raise self.fail(
                where, f"expected a NetBox slug (a-z, 0-9, '-', '_'), got {_show(value)}"
            )
        return value

    def url(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not re.match(r"https?://[^/\s]+", value):
            raise self.fail(where, f"expected an http:// or https:// URL, got {_show(value)}")
        return value.rstrip("/")

    def path_value(self, value: Any, where: str) -> Path:
        return self.base / Path(self.string(value, where)).expanduser()

    def existing_file(self, value: Any, where: str) -> Path:
        path = self.path_value(value, where)
        if path.is_dir():
            raise self.fail(where, f"{path} is a directory, not a file")
        if not path.is_file():
            raise self.fail(where, f"file {path} does not exist")
        return path

    def source(self, value: Any, where: str) -> Path:
        text = self.string(value, where)
        if not text.startswith("file:") or text == "file:":
            raise self.fail(where, f'expected "file:PATH", got {_show(value)}')
        path = self.path_value(text.removeprefix("file:"), where)
        if not path.exists():
            raise self.fail(where, f"{path} does not exist")
        return path


def _show(value: Any) -> str:
    """A value as the user wrote it, for error messages."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)
