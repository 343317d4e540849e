"""A whole run of one fabric, as a timer starts it: take the fabric's lock, read its state from
NetBox, skip it when fresh, sync it, and record the result (state on the site, a journal entry,
metrics) whatever happened. Several fabrics run as child processes, one per fabric, so a fabric
that hangs can be stopped without the others.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from types import FrameType
from typing import Any

from hhsync import metrics, state
from hhsync.config import Config, FabricConfig
from hhsync.deadline import Deadline
from hhsync.durations import format_duration
from hhsync.errors import BusyError, DeadlineExceeded, HhsyncError
from hhsync.kube.source import Source
from hhsync.lock import fabric_lock, state_dir
from hhsync.netbox.client import NetBox
from hhsync.netbox.schema import ensure_schema
from hhsync.netbox.sitestate import add_journal, ensure_site, read_states, write_state
from hhsync.sync import DEFAULTS, Options, Outcome, sync_fabric

RECORD_SECONDS = 60  # the budget for recording the result, even after the run's deadline
GRACE = 15  # the SIGALRM backstop fires this long after the deadline


def run_fabric(
    fabric: FabricConfig,
    config: Config,
    open_netbox: Callable[[], NetBox],
    open_source: Callable[[FabricConfig], Source],
    *,
    clock: Callable[[], datetime],
    force: bool = False,
    options: Options = DEFAULTS,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """One fabric's run; every failure ends up in the returned Outcome, never as an exception."""
    try:
        with fabric_lock(state_dir(config.run.state_dir), fabric.name, config.run.lock_wait):
            deadline = Deadline(fabric.deadline)
            with stop_on_signals(deadline), backstop(deadline):
                return _locked(
                    fabric,
                    config,
                    open_netbox,
                    open_source,
                    clock,
                    deadline,
                    force,
                    options,
                    progress,
                )
    except BusyError as e:
        return Outcome(fabric.name, options.dry_run, error=str(e), busy=True)
    except (HhsyncError, Stuck) as e:
        return Outcome(fabric.name, options.dry_run, error=str(e))


def _locked(
    fabric: FabricConfig,
    config: Config,
    open_netbox: Callable[[], NetBox],
    open_source: Callable[[FabricConfig], Source],
    clock: Callable[[], datetime],
    deadline: Deadline,
    force: bool,
    options: Options,
    progress: Callable[[int, int], None] | None,
) -> Outcome:
    netbox = open_netbox()
    try:
        deadline.enter("reading the sync state")
        stored = read_states(netbox, [fabric.site], deadline).get(fabric.site)
        previous = stored[1] if stored else state.SyncState()
        due = state.needs_sync(previous, fabric.interval, clock())
        if not (due.needed or force or options.dry_run):
            return Outcome(fabric.name, fresh=due.reason)
        deadline.enter("loading the kubeconfig" if fabric.kubeconfig else "opening the source")
        try:  # sync_fabric reports its own errors; these are the source's and the backstop's
            source = open_source(fabric)
            try:
                outcome = sync_fabric(
                    fabric,
                    netbox,
                    source,
                    now=clock(),
                    deadline=deadline,
                    options=replace(options, previous=previous),
                    progress=progress,
                )
            finally:
                source.close()
        except (HhsyncError, Stuck) as e:
            outcome = Outcome(fabric.name, options.dry_run, error=str(e))
        if not options.dry_run:
            _record(outcome, fabric, config, netbox, stored[0] if stored else None, clock())
        return outcome
    finally:
        netbox.close()


def _record(
    outcome: Outcome,
    fabric: FabricConfig,
    config: Config,
    netbox: NetBox,
    site: int | None,
    now: datetime,
) -> None:
    """State on the site (one PATCH), a journal entry when something changed or failed, and
    metrics. Runs on a fresh budget: a run stopped by its deadline is still recorded."""
    counts = outcome.counts()
    message = outcome.error or outcome.summary()
    mismatches = outcome.as_json()["mismatches"]
    fields = state.record(
        now=now,
        ok=outcome.ok,
        message=message,
        counts=counts,
        mismatches=mismatches,
        interval=fabric.interval,
        fingerprint=outcome.fingerprint,
    )
    budget = Deadline(RECORD_SECONDS)
    try:
        if site is None:
            site = outcome.site
        if site is None:  # the run failed before it got to set anything up
            ensure_schema(netbox, budget)
            site = ensure_site(netbox, fabric.site, budget)
        write_state(netbox, site, fields, budget)
        if not outcome.ok or any(counts[k] for k in ("created", "updated", "deleted")):
            add_journal(netbox, site, outcome.ok, f"hhsync sync: {message}", budget)
    except HhsyncError as e:
        outcome.error = f"{outcome.error or 'sync done'}; recording the state failed: {e}"
    if config.run.metrics_file is not None:
        lines = metrics.render(
            fabric.name,
            attempt=now,
            success=now if outcome.ok else None,
            ok=outcome.ok,
            seconds=outcome.seconds,
            counts=counts,
        )
        try:
            metrics.write(config.run.metrics_file, fabric.name, lines)
        except HhsyncError as e:
            outcome.warnings.append(str(e))


@contextmanager
def stop_on_signals(deadline: Deadline) -> Iterator[None]:
    """SIGTERM (systemd stopping the unit) and SIGINT stop the run at its next safe point."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        deadline.stop_reason = signal.Signals(signum).name

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Stuck(BaseException):
    """Raised by the backstop. Not an Exception, so that no `except Exception` on the way (the
    kubernetes client's exec-plugin loader has one, and logs) can swallow it."""


@contextmanager
def backstop(deadline: Deadline) -> Iterator[None]:
    """If a run is stuck where no safe point is reached (an exec-credential plugin that hangs
    while the kubeconfig loads), SIGALRM interrupts it GRACE seconds after its deadline."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        stuck = DeadlineExceeded(f"{format_duration(deadline.seconds)}, during {deadline.phase}")
        raise Stuck(f"{stuck} (stuck there; stopped {GRACE}s later by the backstop)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, deadline.seconds + GRACE)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_children(
    config: Config, fabrics: list[FabricConfig], flags: list[str], verbose: int
) -> list[dict[str, Any]]:
    """Each fabric in its own `hhsync sync FABRIC --json` process, [run] parallel at once."""
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
            *flags,
        ]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as child:
            children.add(child)
            limit = config.run.lock_wait + fabric.deadline + GRACE + RECORD_SECONDS
            try:
                out, err = child.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                child.kill()
                out, err = child.communicate()
            children.discard(child)
        sys.stderr.write(err)
        try:
            [report] = json.loads(out)["fabrics"]
            return dict(report)
        except (ValueError, KeyError, TypeError):
            return Outcome(
                fabric.name,
                error=f"its sync process ended with exit code {child.returncode} and no report",
            ).as_json()

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
