#!/usr/bin/env python3
"""Set up or run the throwaway NetBox 4.7.3 test instance (for `make demo` and CI warm-up).

    scripts/netbox-env.py setup                 # install/verify everything, print timings
    scripts/netbox-env.py start demo [--port P] # run until Ctrl-C / SIGTERM, then stop

`start` prints KEY=VALUE lines (NETBOX_URL, NETBOX_TOKEN, ...) once the server answers.
Needs `requests` (run it with the repo's .venv). See tests/harness/netbox.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `tests.`

from tests.harness.netbox import (
    NetBoxSetupError,
    ensure_netbox_env,
    start_netbox,
)


def _log(message: str) -> None:
    print(f"[netbox] {message}", file=sys.stderr, flush=True)


def _setup(_args: argparse.Namespace) -> int:
    env = ensure_netbox_env(log=_log)
    for step, seconds in env.timings.items():
        print(f"{step}: {seconds:.2f}s")
    return 0


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # same clean shutdown path as Ctrl-C


def _start(args: argparse.Namespace) -> int:
    started = time.monotonic()
    # Installed first, so an early SIGTERM also lets start_netbox() clean up its server.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        env = ensure_netbox_env(log=_log)
        instance = start_netbox(
            env, name=args.name, redis_db=args.redis_db, workers=args.workers, port=args.port
        )
    except KeyboardInterrupt:
        return 130
    try:
        _log(f"ready in {time.monotonic() - started:.1f}s; Ctrl-C to stop")
        print(f"NETBOX_URL={instance.url}")
        print(f"NETBOX_USERNAME={instance.username}")
        print(f"NETBOX_PASSWORD={instance.password}")
        print(f"NETBOX_TOKEN={instance.token}")
        print(f"NETBOX_TOKEN_READONLY={instance.readonly_token}")
        print(f"NETBOX_LOG={instance.log_path}", flush=True)
        while instance.running:
            time.sleep(0.5)
        _log(f"gunicorn exited unexpectedly; see {instance.log_path}")
        return 1
    except KeyboardInterrupt:
        _log("stopping")
        return 0
    finally:
        instance.stop()


def main() -> int:
    """Parse the command line and run the sub-command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="ensure venv, schema dump and template DB exist")
    start = commands.add_parser("start", help="start an instance and keep it in the foreground")
    start.add_argument("name", help="instance name; its database is hhsync_nb_<name>")
    start.add_argument("--port", type=int, default=None, help="default: a free port")
    # 14/15 by default: pytest's test slots use Redis DBs 2..13.
    start.add_argument("--redis-db", type=int, default=14, help="uses this DB and the next")
    start.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    try:
        return _setup(args) if args.command == "setup" else _start(args)
    except NetBoxSetupError as exc:
        _log(f"ERROR: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
