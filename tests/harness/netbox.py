"""A throwaway NetBox 4.7.3 on 127.0.0.1 for integration tests, the demo and benchmarks.

Follows shared/netbox/RECIPE.md (beside the repository): NetBox from PyPI in its own Python
>= 3.12 venv, PostgreSQL and Redis on loopback, a schema dump instead of the 6-7 minute
``migrate``, a seeded template database that every instance clones, and gunicorn as the server.

Stdlib + requests only (no pytest), so scripts and benchmarks can use it too::

    env = ensure_netbox_env()
    with start_netbox(env, name="demo", redis_db=14) as nb:
        nb.session().get(f"{nb.url}/api/status/")

Cache layout (``$HHSYNC_TEST_CACHE`` or ``~/.cache/hhsync-test``)::

    netbox-4.7.3/
        venv/                        NetBox + gunicorn (run as ``venv/bin/python -m ...``)
        schema.sql.gz                pg_dump of a freshly migrated, empty database
        root/conf/configuration.py   written by this module (NETBOX_ROOT)
        setup.lock                   flock: exclusive while setting up, shared while cloning
        logs/                        pip, migrate and one gunicorn log per instance name
        run/                         per-instance flocks and pid files

PostgreSQL databases: ``hhsync_nb_tpl`` (template; connections disabled), one ``hhsync_nb_<name>``
per instance. Redis DBs: 0/1 for setup commands, 2..13 for test slots, 14/15 for the demo CLI.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import requests
import requests.adapters
import urllib3

NETBOX_VERSION = "4.7.3"
BRANCHING = "netboxlabs-netbox-branching"
BRANCHING_VERSION = "1.2.2"  # supports NetBox 4.7

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379

DB_PREFIX = "hhsync_nb"
TEMPLATE_DB = f"{DB_PREFIX}_tpl"
SCHEMA_BUILD_DB = f"{DB_PREFIX}_schema_build"
SETUP_REDIS_DB = 0  # management commands during setup use Redis DBs 0 and 1
TEST_SLOTS = 6  # pytest slots test0..test5 use Redis DBs 2..13 (Redis has 16 by default)

ADMIN_USERNAME = "hhsync"
ADMIN_PASSWORD = "hhsync-Test-Passw0rd"
ADMIN_TOKEN = "nbt_hhsynctest01.0123456789abcdef0123456789abcdef01234567"
ADMIN_TOKEN_V1 = "hhsyncv10123456789abcdef0123456789abcdef"  # legacy v1: 40 chars plaintext
READONLY_USERNAME = "readonly"
READONLY_PASSWORD = ADMIN_PASSWORD
READONLY_TOKEN = "nbt_hhsyncread01.fedcba9876543210fedcba9876543210fedcba98"

READY_TIMEOUT = 90.0
READY_POLL = 0.15

Log = Callable[[str], None]

# RECIPE section 3. The fixed secrets are deliberate: the template's v2 token hashes depend on
# the pepper, and nothing here is reachable from outside 127.0.0.1.
CONFIGURATION = """\
# NetBox 4.7 configuration for hhsync's throwaway test instances. NOT for production.
# Written by tests/harness/netbox.py; edits are overwritten.
import os

ALLOWED_HOSTS = ['127.0.0.1', 'localhost']

DATABASES = {
    'default': {
        'NAME': os.environ.get('NETBOX_DB_NAME', 'hhsync_netbox'),
        'USER': os.environ.get('NETBOX_DB_USER', 'postgres'),
        'PASSWORD': os.environ.get('NETBOX_DB_PASSWORD', ''),
        'HOST': '127.0.0.1',
        'PORT': 5432,
        'CONN_MAX_AGE': 300,
        # Reconnect after reset() dropped and re-cloned the database under the running server.
        'CONN_HEALTH_CHECKS': True,
    }
}

REDIS = {
    'tasks': {
        'HOST': '127.0.0.1',
        'PORT': 6379,
        'DATABASE': int(os.environ.get('NETBOX_REDIS_DB_TASKS', '0')),
        'SSL': False,
    },
    'caching': {
        'HOST': '127.0.0.1',
        'PORT': 6379,
        'DATABASE': int(os.environ.get('NETBOX_REDIS_DB_CACHE', '1')),
        'SSL': False,
    },
}

SECRET_KEY = 'hhsync-test-only-secret-key-0123456789abcdefghijklmnopqrstuv'
API_TOKEN_PEPPERS = {1: 'hhsync-test-only-pepper-0123456789abcdefghijklmnopqrstuvwxyz'}

ISOLATED_DEPLOYMENT = True
CENSUS_REPORTING_ENABLED = False

# The netbox-branching plugin, on for instances started with branching (NETBOX_BRANCHING=1) and
# for migrations, so every database has its tables. Branch jobs need NetBox's rqworker.
if os.environ.get('NETBOX_BRANCHING') == '1':
    from netbox_branching.utilities import DynamicSchemaDict

    PLUGINS = ['netbox_branching']
    PLUGINS_CONFIG = {'netbox_branching': {'provision_workers': 1}}
    DATABASES = DynamicSchemaDict(DATABASES)
    DATABASE_ROUTERS = ['netbox_branching.database.BranchAwareRouter']
"""

# Run once in the template by `netbox shell --no-imports -c` (each management command costs 2-10 s
# of Django startup, so everything is batched). The readonly user may *view* every object type
# and its token has write_enabled=False: it can read everything and write nothing.
SEED_SCRIPT = f"""\
from core.models import ObjectType
from users.models import ObjectPermission, Token, User

admin = User.objects.create_user({ADMIN_USERNAME!r}, password={ADMIN_PASSWORD!r}, is_superuser=True)
key, secret = {ADMIN_TOKEN.removeprefix("nbt_")!r}.split('.')
v1 = {ADMIN_TOKEN_V1!r}
for kwargs in ({{'version': 2, 'key': key, 'token': secret}}, {{'version': 1, 'token': v1}}):
    token = Token(user=admin, description='hhsync test admin', **kwargs)
    token.full_clean()
    token.save()

ro = User.objects.create_user({READONLY_USERNAME!r}, password={READONLY_PASSWORD!r})
key, secret = {READONLY_TOKEN.removeprefix("nbt_")!r}.split('.')
token = Token(user=ro, version=2, key=key, token=secret, write_enabled=False)
token.full_clean()
token.save()
perm = ObjectPermission.objects.create(name='hhsync readonly: view everything', actions=['view'])
perm.object_types.set(ObjectType.objects.all())
perm.users.add(ro)
print('seeded')
"""


class NetBoxSetupError(RuntimeError):
    """Setting up or starting NetBox failed; the message names the step and shows output."""


class NetBoxBusyError(NetBoxSetupError):
    """The instance name or its Redis DBs are in use by another live process."""


def cache_dir() -> Path:
    """Return this NetBox version's cache directory (it may not exist yet)."""
    root = os.environ.get("HHSYNC_TEST_CACHE") or Path.home() / ".cache" / "hhsync-test"
    return Path(root).expanduser() / f"netbox-{NETBOX_VERSION}"


@dataclass(frozen=True)
class NetBoxEnv:
    """A ready NetBox installation: venv, configuration and an up-to-date template database."""

    cache_dir: Path
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def venv(self) -> Path:
        """The NetBox virtualenv."""
        return self.cache_dir / "venv"

    @property
    def python(self) -> Path:
        """The venv's interpreter; run ``python -m netbox`` / ``-m gunicorn`` with it."""
        return self.venv / "bin" / "python"

    @property
    def netbox_root(self) -> Path:
        """NETBOX_ROOT: holds ``conf/configuration.py``."""
        return self.cache_dir / "root"

    @property
    def config_path(self) -> Path:
        """The generated ``configuration.py``."""
        return self.netbox_root / "conf" / "configuration.py"

    @property
    def schema_dump(self) -> Path:
        """Gzipped plain-SQL dump of a freshly migrated, empty NetBox database."""
        return self.cache_dir / "schema.sql.gz"

    @property
    def log_dir(self) -> Path:
        """Logs of pip, migrate and the gunicorn instances."""
        return self.cache_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Per-instance lock and pid files."""
        return self.cache_dir / "run"

    @property
    def lock_path(self) -> Path:
        """Setup lock: exclusive while (re)building, shared while cloning the template."""
        return self.cache_dir / "setup.lock"

    def server_env(self, db_name: str, redis_db: int, branching: bool = True) -> dict[str, str]:
        """Environment for NetBox processes using database ``db_name`` and Redis DBs N, N+1,
        with the branching plugin on or off."""
        env = _python_env()
        env.pop("NETBOX_CONFIGURATION", None)  # it would win over $NETBOX_ROOT/conf
        env.update(
            DJANGO_SETTINGS_MODULE="netbox.settings",
            NETBOX_ROOT=str(self.netbox_root),
            NETBOX_DB_NAME=db_name,
            NETBOX_REDIS_DB_TASKS=str(redis_db),
            NETBOX_REDIS_DB_CACHE=str(redis_db + 1),
            NETBOX_BRANCHING="1" if branching else "0",
        )
        return env

    def netbox_cmd(self, *args: str) -> list[str]:
        """Command line for ``netbox <args>`` (a Django management command)."""
        return [str(self.python), "-m", "netbox", *args]


# --------------------------------------------------------------------------------------------
# Small helpers


def _python_env() -> dict[str, str]:
    """os.environ without the caller's Python paths, which must not leak into the NetBox venv."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    return env


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run(
    step: str,
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    log_path: Path | None = None,
    timeout: float = 120,
    ok_codes: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd``; raise NetBoxSetupError naming ``step`` with the output tail if it fails.

    With ``log_path`` the output goes to that file (long commands: pip, migrate), else it is
    captured.
    """
    out_file: IO[bytes] | None = None
    try:
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out_file = log_path.open("wb")
        proc = subprocess.run(
            cmd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=out_file or subprocess.PIPE,
            stderr=subprocess.STDOUT if out_file else subprocess.PIPE,
            env=env,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise NetBoxSetupError(f"{step} failed: command not found: {cmd[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        output = _decode(exc.stdout) + _decode(exc.stderr)
        if log_path is not None:
            output = log_path.read_text(errors="replace")
        raise NetBoxSetupError(
            f"{step} failed: timed out after {timeout:.0f}s: {shlex.join(cmd)}\n{_tail(output)}"
        ) from exc
    finally:
        if out_file is not None:
            out_file.close()
    if proc.returncode not in ok_codes:
        if log_path is not None:
            output = f"(full output: {log_path})\n" + _tail(log_path.read_text(errors="replace"))
        else:
            output = _tail(_decode(proc.stdout) + "\n" + _decode(proc.stderr))
        raise NetBoxSetupError(
            f"{step} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{output}"
        )
    return proc


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def _pg_args() -> list[str]:
    # -w: never prompt for a password (fail instead); trust auth on loopback is expected.
    return ["-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-w"]


def _psql(step: str, *sql: str, db: str = "postgres", input: bytes | None = None) -> str:
    """Run SQL statements (each its own ``-c``, so DROP/CREATE DATABASE work) and return stdout."""
    cmd = ["psql", *_pg_args(), "-d", db, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for statement in sql:
        cmd += ["-c", statement]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    return _decode(_run(step, cmd, env=env, input=input).stdout).strip()


def _redis(*commands: tuple[str, ...]) -> list[bytes]:
    """Send commands to Redis on one connection and return the reply lines (stdlib only: CI
    images with a Redis service container often lack redis-cli)."""
    payload = b"".join(
        f"*{len(cmd)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in cmd)
        for cmd in commands
    )
    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"\r\n") < len(commands):  # only simple one-line replies are used
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    replies = data.split(b"\r\n")[: len(commands)]
    for cmd, reply in zip(commands, replies, strict=False):
        if not reply.startswith((b"+", b":")):
            raise NetBoxSetupError(f"redis {' '.join(cmd)} failed: {reply!r}")
    return replies


def _flush_redis(*dbs: int) -> None:
    try:
        _redis(*[c for db in dbs for c in (("SELECT", str(db)), ("FLUSHDB",))])
    except OSError as exc:
        raise NetBoxSetupError(f"flush Redis DBs {dbs} failed: {exc}") from exc


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # Same option gunicorn uses, so TIME_WAIT leftovers don't count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@contextlib.contextmanager
def _locked(path: Path, *, shared: bool = False, log: Log | None = None) -> Iterator[None]:
    """Hold an flock on ``path`` (released when the file closes, also if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with path.open("a") as lock_file:
        try:
            fcntl.flock(lock_file, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log(f"waiting for {path} (held by another process)")
            fcntl.flock(lock_file, mode)
        yield


@contextlib.contextmanager
def _timed(what: str, timings: dict[str, float], log: Log) -> Iterator[None]:
    start = time.monotonic()
    yield
    timings[what] = time.monotonic() - start
    log(f"{what}: {timings[what]:.1f}s")


# --------------------------------------------------------------------------------------------
# Setup steps


def _ensure_postgres(log: Log) -> None:
    if not _port_open(PG_HOST, PG_PORT):
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if not versions:
            raise NetBoxSetupError(
                f"start PostgreSQL failed: nothing listens on {PG_HOST}:{PG_PORT} and there is no "
                "cluster in /etc/postgresql to start"
            )
        log(f"starting PostgreSQL {versions[-1]}")
        cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
        _run("start PostgreSQL", cmd, timeout=60)
        if not _wait_until(lambda: _port_open(PG_HOST, PG_PORT), 30):
            raise NetBoxSetupError(
                f"start PostgreSQL failed: {PG_HOST}:{PG_PORT} not open after 30s"
            )
    _psql("connect to PostgreSQL", "SELECT 1")


def _ensure_redis(log: Log) -> None:
    with contextlib.suppress(OSError):
        _redis(("PING",))
        return
    log("starting Redis")
    cmd = ["redis-server", "--daemonize", "yes", "--bind", REDIS_HOST, "--port", str(REDIS_PORT)]
    _run("start Redis", [*cmd, "--save", "", "--appendonly", "no"], timeout=30)
    if not _wait_until(lambda: _port_open(REDIS_HOST, REDIS_PORT), 10):
        raise NetBoxSetupError(f"start Redis failed: {REDIS_HOST}:{REDIS_PORT} not open after 10s")
    _redis(("PING",))


def _write_config(env: NetBoxEnv) -> None:
    if env.config_path.exists() and env.config_path.read_text() == CONFIGURATION:
        return
    env.config_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = env.config_path.with_suffix(".tmp")
    tmp.write_text(CONFIGURATION)
    tmp.replace(env.config_path)  # atomic: a server starting meanwhile never reads half a file


def _venv_ready(env: NetBoxEnv) -> bool:
    site = env.venv / "lib"
    return env.python.exists() and any(
        site.glob(f"python3.*/site-packages/netbox-{NETBOX_VERSION}.dist-info")
    )


def _ensure_branching(env: NetBoxEnv, log: Log) -> None:
    """The branching plugin in the NetBox venv (a venv from before it was needed lacks it)."""
    wheel = f"netboxlabs_netbox_branching-{BRANCHING_VERSION}.dist-info"
    if any((env.venv / "lib").glob(f"python3.*/site-packages/{wheel}")):
        return
    log(f"installing {BRANCHING}=={BRANCHING_VERSION} into the NetBox venv")
    _run(
        f"pip install {BRANCHING}=={BRANCHING_VERSION}",
        [str(env.python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
         f"{BRANCHING}=={BRANCHING_VERSION}", f"netbox=={NETBOX_VERSION}"],
        env=_python_env(),
        log_path=env.log_dir / "pip-install-branching.log",
        timeout=900,
    )  # fmt: skip


def _find_python() -> str:
    """Return the path of a Python >= 3.12 interpreter (NetBox 4.7 requires it)."""
    explicit = os.environ.get("HHSYNC_NETBOX_PYTHON")
    candidates: list[tuple[str, dict[str, str]]] = []
    if explicit:
        candidates.append((explicit, _python_env()))
    else:
        for name in ("python3.12", "python3.13"):  # 3.12 first: what the recipe measured
            if shutil.which(name) is None:
                continue
            candidates.append((name, _python_env()))
            # A pyenv shim only runs a version named by PYENV_VERSION (or the global one).
            versions = _pyenv_versions(name)
            candidates += [(name, {**_python_env(), "PYENV_VERSION": v}) for v in versions]
    probe = "import sys; print(sys.version_info >= (3, 12), sys.executable)"
    for cmd, cmd_env in candidates:
        try:
            proc = subprocess.run(
                [cmd, "-c", probe], env=cmd_env, capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        ok, _, executable = _decode(proc.stdout).strip().partition(" ")
        if proc.returncode == 0 and ok == "True":
            return executable  # the real interpreter, so no shim is involved later
    raise NetBoxSetupError(
        "find Python >= 3.12 failed: NetBox 4.7 needs it; tried "
        f"{[c for c, _ in candidates] or 'python3.12, python3.13 (not on PATH)'}. "
        "Set HHSYNC_NETBOX_PYTHON=/path/to/python3.12"
    )


def _pyenv_versions(name: str) -> list[str]:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return []
    proc = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, timeout=30, check=False
    )
    minor = name.removeprefix("python")
    return [v for v in _decode(proc.stdout).split() if v == minor or v.startswith(minor + ".")]


def _create_venv(env: NetBoxEnv, log: Log) -> None:
    python = _find_python()
    log(f"creating the NetBox venv with {python} (pip install netbox=={NETBOX_VERSION}, ~100 s)")
    # Build under a temporary name and rename at the end, so `venv` exists only when complete.
    tmp = env.venv.with_name("venv.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(env.venv, ignore_errors=True)
    _run("create the NetBox venv", [python, "-m", "venv", str(tmp)], env=_python_env(), timeout=300)
    pip = [str(tmp / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    _run(
        f"pip install netbox=={NETBOX_VERSION} (needs gcc, libpq-dev and network access)",
        [*pip, "--no-input", f"netbox=={NETBOX_VERSION}"],
        env=_python_env(),
        log_path=env.log_dir / "pip-install.log",
        timeout=1800,
    )
    tmp.rename(env.venv)
    # Console scripts have the build path in their shebang; point them at the final location.
    old, new = str(tmp).encode(), str(env.venv).encode()
    for script in (env.venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            if old in data:
                script.write_bytes(data.replace(old, new))


def _build_schema_dump(env: NetBoxEnv, log: Log) -> None:
    log("migrating an empty database: ~6-7 min, once per NetBox version and cache")
    db = SCHEMA_BUILD_DB
    _psql(
        "create the schema build DB",
        f"DROP DATABASE IF EXISTS {db} WITH (FORCE)",
        f"CREATE DATABASE {db}",
    )
    _run(
        "netbox migrate",
        env.netbox_cmd("migrate", "--no-input"),
        env=env.server_env(db, SETUP_REDIS_DB),
        log_path=env.log_dir / "migrate.log",
        timeout=3600,
    )
    dump = _run("pg_dump", ["pg_dump", *_pg_args(), "--no-owner", "--no-privileges", db]).stdout
    tmp = env.schema_dump.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as out:
        out.write(dump)
    tmp.replace(env.schema_dump)
    _psql("drop the schema build DB", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _template_stamp(env: NetBoxEnv) -> str:
    """What the template must have been built from: NetBox version, dump and seed/config."""
    dump_sha = hashlib.sha256(env.schema_dump.read_bytes()).hexdigest()
    seed_sha = hashlib.sha256((SEED_SCRIPT + CONFIGURATION).encode()).hexdigest()
    return f"{NETBOX_VERSION} {dump_sha} seed={seed_sha[:12]}"


def _template_comment() -> str | None:
    """The template DB's comment ('' if none), or None if the template does not exist."""
    query = "SELECT 'x' || coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database"
    out = _psql("read the template's stamp", f"{query} WHERE datname = '{TEMPLATE_DB}'")
    return out[1:] if out else None


def _build_template(env: NetBoxEnv, stamp: str, log: Log) -> bool:
    """(Re)build the template from the dump; False if the dump lacks migrations (stale)."""
    db = TEMPLATE_DB
    _psql(
        "create the template DB",
        f"DROP DATABASE IF EXISTS {db} WITH (FORCE)",
        f"CREATE DATABASE {db}",
    )
    sql = gzip.decompress(env.schema_dump.read_bytes())
    with _timed("restore schema dump", env.timings, log):
        _psql("restore the schema dump", db=db, input=sql)
    server_env = env.server_env(db, SETUP_REDIS_DB)
    with _timed("migrate --check", env.timings, log):
        check = _run(
            "netbox migrate --check",
            env.netbox_cmd("migrate", "--check", "--skip-checks"),
            env=server_env,
            ok_codes=(0, 1),
        )
    if check.returncode == 1:  # rc 1 = unapplied migrations: the dump is from another NetBox
        return False
    with _timed("seed users and tokens", env.timings, log):
        _run(
            "seed users and tokens",
            env.netbox_cmd("shell", "--no-imports", "-c", SEED_SCRIPT),
            env=server_env,
        )
    terminate = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    # Nobody may connect to the template: CREATE DATABASE ... TEMPLATE fails while anyone is.
    _psql(
        "seal the template DB",
        f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false",
        f"{terminate} WHERE datname = '{db}'",
        f"COMMENT ON DATABASE {db} IS '{stamp}'",
    )
    _flush_redis(SETUP_REDIS_DB, SETUP_REDIS_DB + 1)
    return True


def ensure_netbox_env(log: Log = print) -> NetBoxEnv:
    """Make sure everything a NetBox instance needs exists; cheap when it already does.

    Starts PostgreSQL/Redis if they are down, creates the venv, builds the schema dump and the
    seeded template database as needed. Safe to call concurrently (an flock serialises setup).
    Raises NetBoxSetupError naming the failed step.
    """
    env = NetBoxEnv(cache_dir())
    start = time.monotonic()
    with _locked(env.lock_path, log=log):
        _ensure_postgres(log)
        _ensure_redis(log)
        _write_config(env)
        if not _venv_ready(env):
            with _timed("venv + pip install", env.timings, log):
                _create_venv(env, log)
        _ensure_branching(env, log)
        for _attempt in range(2):
            if not env.schema_dump.exists():
                with _timed("schema dump (migrate)", env.timings, log):
                    _build_schema_dump(env, log)
            stamp = _template_stamp(env)
            if _template_comment() == stamp:
                break
            with _timed("template DB", env.timings, log):
                fresh = _build_template(env, stamp, log)
            if fresh:
                break
            log("the schema dump lacks migrations of this NetBox; rebuilding it")
            env.schema_dump.unlink()
        else:
            raise NetBoxSetupError("build the template DB failed: still stale after a new dump")
    env.timings["total"] = time.monotonic() - start
    log(f"NetBox {NETBOX_VERSION} environment ready in {env.timings['total']:.2f}s")
    return env


# --------------------------------------------------------------------------------------------
# Instances


def _auth_header(token: str) -> str:
    # v2 tokens (nbt_<key>.<secret>) use Bearer, legacy v1 tokens use "Token".
    return f"Bearer {token}" if token.startswith("nbt_") and "." in token else f"Token {token}"


class NetBoxInstance:
    """A gunicorn-served NetBox on 127.0.0.1 with its own database clone and two Redis DBs.

    Holds flocks on its name and Redis DBs from start until stop(), so concurrent processes can't
    share (and wipe) each other's database.
    """

    username = ADMIN_USERNAME
    password = ADMIN_PASSWORD
    token = ADMIN_TOKEN
    token_v1 = ADMIN_TOKEN_V1
    readonly_token = READONLY_TOKEN

    def __init__(
        self,
        env: NetBoxEnv,
        *,
        name: str,
        redis_db: int,
        workers: int,
        port: int,
        branching: bool = False,
    ):
        if not re.fullmatch(r"[a-z0-9_]{1,40}", name):
            raise ValueError(f"instance name must match [a-z0-9_]{{1,40}}: {name!r}")
        if not 0 <= redis_db <= 14:
            raise ValueError(
                f"redis_db must be 0..14 (it uses redis_db and redis_db + 1): {redis_db}"
            )
        self.env = env
        self.name = name
        self.db_name = f"{DB_PREFIX}_{name}"
        self.redis_db = redis_db
        self.workers = workers
        self.port = port
        self.branching = branching  # the netbox-branching plugin, with an rqworker for its jobs
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = env.log_dir / f"gunicorn-{name}.log"
        self._pid_path = env.run_dir / f"{name}.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._locks: list[IO[str]] = []
        self._spare: tuple[subprocess.Popen[bytes], IO[str]] | None = None
        self._worker: subprocess.Popen[bytes] | None = None
        self._snapshots: set[str] = set()

    def __repr__(self) -> str:
        return f"<NetBoxInstance {self.name} {self.url} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        """PID of the gunicorn master (also its process group), None when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the gunicorn master process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def session(self, token: str | None = None) -> requests.Session:
        """A requests session sending ``token`` (default: the v2 admin token) and JSON headers."""
        session = reads_retried(requests.Session())
        session.headers.update(
            {
                "Authorization": _auth_header(token or self.token),
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
        )
        return session

    def reset(self) -> None:
        """Give the running server an empty database (fresh template clone) and empty Redis DBs.

        The server keeps running; CONN_HEALTH_CHECKS makes its workers reconnect. The clone was
        made in the background after the previous reset (a CREATE DATABASE right after a DROP
        takes 0.7-1.3 s here, a rename none), and the next one starts now.
        """
        self._claim()
        spare = self._take_spare()
        with _locked(self.env.lock_path, shared=True):  # no template rebuild while cloning
            _psql(
                f"clone {self.db_name} from {TEMPLATE_DB}",
                f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)",
                f"ALTER DATABASE {self._spare_db} RENAME TO {self.db_name}"
                if spare
                else f"CREATE DATABASE {self.db_name} TEMPLATE {TEMPLATE_DB}",
            )
        # NetBox caches its config revision in Redis; queued jobs would refer to old objects.
        _flush_redis(self.redis_db, self.redis_db + 1)
        self._make_spare()

    @property
    def _spare_db(self) -> str:
        return f"{self.db_name}_spare"

    def _make_spare(self) -> None:
        """Start cloning the template into the spare database, in the background."""
        cmd = ["psql", *_pg_args(), "-d", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-c", f"DROP DATABASE IF EXISTS {self._spare_db} WITH (FORCE)"]
        cmd += ["-c", f"CREATE DATABASE {self._spare_db} TEMPLATE {TEMPLATE_DB}"]
        lock = self.env.lock_path.open("a")
        fcntl.flock(lock, fcntl.LOCK_SH)  # held until the clone is done: no template rebuild
        self._spare = (
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            lock,
        )

    def _take_spare(self) -> bool:
        """Wait for the spare clone; True when it is there to be renamed into place."""
        if self._spare is None:
            return False
        proc, lock = self._spare
        self._spare = None
        try:
            return proc.wait(timeout=120) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return False
        finally:
            lock.close()

    def save(self, name: str) -> None:
        """Keep the database as it is now under `name` (for `restore`), e.g. a synced fabric."""
        self._claim()
        snapshot = self._snapshot_db(name)
        terminate = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        _psql(  # nobody may be connected to a database being copied: NetBox reconnects later
            f"save {self.db_name} as {snapshot}",
            f"DROP DATABASE IF EXISTS {snapshot} WITH (FORCE)",
            f"{terminate} WHERE datname = '{self.db_name}'",
            f"CREATE DATABASE {snapshot} TEMPLATE {self.db_name}",
        )
        self._snapshots.add(snapshot)

    def restore(self, name: str) -> bool:
        """Put back the database saved as `name` in this session; False when there is none."""
        snapshot = self._snapshot_db(name)
        if snapshot not in self._snapshots:
            return False
        self._claim()
        _psql(
            f"restore {self.db_name} from {snapshot}",
            f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)",
            f"CREATE DATABASE {self.db_name} TEMPLATE {snapshot}",
        )
        _flush_redis(self.redis_db, self.redis_db + 1)
        return True

    def _snapshot_db(self, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]{1,20}", name):
            raise ValueError(f"snapshot names must match [a-z0-9_]{{1,20}}: {name!r}")
        return f"{self.db_name}_s_{name}"

    def _drop_copies(self) -> None:
        """Drop the spare and the saved snapshots (this session's only)."""
        self._take_spare()
        names = [self._spare_db, *sorted(self._snapshots)]
        with contextlib.suppress(NetBoxSetupError):
            _psql("drop copies", *(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)" for n in names))
        self._snapshots.clear()

    def start(self) -> None:
        """Start gunicorn on ``self.port`` (keeping the database) and wait until it answers."""
        if self.running:
            return
        self._claim()
        if not _wait_until(lambda: _port_free(self.port), 10):
            raise NetBoxSetupError(f"start NetBox {self.name!r} failed: port {self.port} is in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            offset = log_file.tell()
            cmd = [str(self.env.python), "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}"]
            cmd += ["--workers", str(self.workers), "--threads", "4", "--timeout", "300"]
            cmd += ["--graceful-timeout", "5", "--no-control-socket", "netbox.wsgi"]
            server_env = self.env.server_env(self.db_name, self.redis_db, self.branching)
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=server_env,
                cwd=self.env.netbox_root,
                start_new_session=True,  # own process group: kill()/stop() reach the workers too
            )
            if self.branching:  # stopped, killed and cleaned up with gunicorn
                self._worker = subprocess.Popen(
                    self.env.netbox_cmd("rqworker", "high", "default", "low"),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=server_env,
                    cwd=self.env.netbox_root,
                    start_new_session=True,
                )
        pids = [p.pid for p in (self._proc, self._worker) if p is not None]
        self._pid_path.write_text(" ".join(map(str, pids)))
        self._wait_ready(offset)

    def _wait_ready(self, log_offset: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        with self.session() as session:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    rc = self._proc.returncode if self._proc else None
                    raise NetBoxSetupError(
                        f"start NetBox {self.name!r} failed: gunicorn exited with {rc} before it "
                        f"was ready; {self.log_path}:\n{self._log_tail(log_offset)}"
                    )
                try:
                    response = session.get(f"{self.url}/api/status/", timeout=10)
                except requests.RequestException as exc:
                    last = str(exc)
                else:
                    if response.ok:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
                    if response.status_code < 500:  # up, but rejects us: waiting won't help
                        self.kill()
                        raise NetBoxSetupError(f"start NetBox {self.name!r} failed: {last}")
                if time.monotonic() > deadline:
                    self.kill()
                    raise NetBoxSetupError(
                        f"start NetBox {self.name!r} failed: not ready after {READY_TIMEOUT:.0f}s "
                        f"({last}); {self.log_path}:\n{self._log_tail(log_offset)}"
                    )
                time.sleep(READY_POLL)

    def _log_tail(self, offset: int) -> str:
        with self.log_path.open("rb") as log_file:
            log_file.seek(offset)
            return _tail(_decode(log_file.read()))

    def kill(self) -> None:
        """SIGKILL the server's process group (a crash); start() brings it back, data intact."""
        self._signal_and_wait(signal.SIGKILL, grace=0)

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 10 s) and release the name and Redis DBs."""
        self._signal_and_wait(signal.SIGTERM, grace=10)
        if self._locks:
            self._drop_copies()
        if self._locks:  # without them the pid file is not ours
            self._pid_path.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        for lock_file in self._locks:
            lock_file.close()
        self._locks = []

    def _signal_and_wait(self, sig: signal.Signals, grace: float) -> None:
        procs = [p for p in (self._proc, self._worker) if p is not None]
        if not procs:
            return
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        for proc in procs:
            try:
                proc.wait(timeout=grace or None)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Workers die just after the master; wait until none holds the listening socket.
        _wait_until(lambda: _port_free(self.port), 10)

    def _claim(self) -> None:
        """Lock the name and Redis DBs for this process; kill a server a dead owner left behind."""
        if self._locks:
            return
        resources = [f"db-{self.name}", f"redis-{self.redis_db}", f"redis-{self.redis_db + 1}"]
        self.env.run_dir.mkdir(parents=True, exist_ok=True)
        for resource in resources:
            lock_file = (self.env.run_dir / f"{resource}.lock").open("a")
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock_file.close()
                self._release()
                raise NetBoxBusyError(
                    f"start NetBox {self.name!r} failed: {resource} is in use by another process"
                ) from None
            self._locks.append(lock_file)
        self._kill_orphan()

    def _kill_orphan(self) -> None:
        # We hold the name lock, so a server recorded in the pid file belongs to a dead process.
        with contextlib.suppress(FileNotFoundError, ValueError):
            for pid in map(int, self._pid_path.read_text().split()):
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if str(self.env.venv).encode() in cmdline:  # gunicorn or its rqworker
                        os.killpg(pid, signal.SIGKILL)
        self._pid_path.unlink(missing_ok=True)

    def __enter__(self) -> NetBoxInstance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_netbox(
    env: NetBoxEnv,
    *,
    name: str = "test",
    redis_db: int = 2,
    workers: int = 2,
    port: int | None = None,
    branching: bool = False,
) -> NetBoxInstance:
    """Clone database ``hhsync_nb_<name>`` from the template, flush Redis DBs ``redis_db`` and
    ``redis_db + 1``, start gunicorn on 127.0.0.1 (a free port unless given) and wait until ready.
    With `branching`, the netbox-branching plugin is on and an rqworker runs its jobs.

    Raises NetBoxBusyError if another process uses the name or the Redis DBs.
    """
    if port is not None and not _port_free(port):
        raise NetBoxSetupError(f"start NetBox {name!r} failed: port {port} is in use")
    instance = NetBoxInstance(
        env,
        name=name,
        redis_db=redis_db,
        workers=workers,
        port=port or _free_port(),
        branching=branching,
    )
    try:
        instance.reset()
        instance.start()
    except BaseException:
        instance.stop()
        raise
    return instance


def start_free_netbox(
    env: NetBoxEnv, *, workers: int = 2, branching: bool = False
) -> NetBoxInstance:
    """Start an instance in the first free test slot (test0..test5 with Redis DBs 2..13), so
    concurrent pytest sessions on one machine never share a database."""
    for slot in range(TEST_SLOTS):
        with contextlib.suppress(NetBoxBusyError):
            return start_netbox(
                env,
                name=f"test{slot}",
                redis_db=2 + 2 * slot,
                workers=workers,
                branching=branching,
            )
    raise NetBoxBusyError(f"start NetBox failed: all {TEST_SLOTS} test slots are in use")


def reads_retried(session: requests.Session) -> requests.Session:
    """`session`, sending a read once more when the server closed a kept-alive connection just as
    it was reused (gunicorn closes idle ones after 2 s; a stalled 2-CPU machine gets there).
    Writes are never sent twice, as in hhsync's own client."""
    retry = urllib3.Retry(total=2, connect=1, read=1, status=0, allowed_methods={"GET", "HEAD"})
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
    return session
