"""The whole-run deadline and stop requests (SIGTERM), checked at safe points."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from hhsync.config import Config, FabricConfig
from hhsync.durations import format_duration
from hhsync.errors import DeadlineExceeded, Interrupted


class Deadline:
    """A monotonic deadline; `phase` names what the run is doing, for the error message."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.start = clock()
        self.phase = "start"
        self.stop_reason: str | None = None

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def enter(self, phase: str) -> None:
        """Mark a safe point: stop here if the deadline passed or a stop was requested."""
        self.check()
        self.phase = phase

    def check(self) -> None:
        if self.stop_reason:
            raise Interrupted(f"stopped by {self.stop_reason} during {self.phase}")
        if self.remaining() <= 0:
            raise DeadlineExceeded(f"{format_duration(self.seconds)}, during {self.phase}")

    def timeout(self, limit: float) -> float:
        """A per-request timeout that never runs past the deadline."""
        self.check()
        return max(0.05, min(limit, self.remaining()))


def unlimited() -> Deadline:
    """For commands without a run deadline (check, status): per-request timeouts still apply."""
    return Deadline(float("inf"))


# How a run stops when it is asked to (SIGTERM, SIGINT) or is stuck past its deadline.

GRACE = 15  # the SIGALRM backstop fires this long after a deadline
RECORD_SECONDS = 60  # the budget for recording a run's result, after the run's own deadline


def time_limit(config: Config, fabric: FabricConfig) -> int:
    """The longest a run of `fabric` can take: waiting for its lock, its deadline and the
    backstop's grace, then recording. systemd's and the parent process's limits use it."""
    return config.run.lock_wait + fabric.deadline + GRACE + RECORD_SECONDS


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
    while the kubeconfig loads), SIGALRM interrupts it GRACE seconds after `deadline`."""
    if threading.current_thread() is not threading.main_thread() or deadline.seconds == math.inf:
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        stuck = DeadlineExceeded(f"{format_duration(deadline.seconds)}, during {deadline.phase}")
        raise Stuck(f"{stuck} (stuck there; stopped {GRACE}s later by the backstop)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, deadline.remaining() + GRACE))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
