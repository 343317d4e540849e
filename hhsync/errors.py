"""Errors a user can act on. Core code raises these; only `cli.py` turns them into exit codes."""

from typing import Any


class HhsyncError(Exception):
    """Base class: the message is one sentence saying what failed, where, and what to do."""

    exit_code = 1


class ConfigError(HhsyncError):
    """The configuration file or a value in it is wrong (exit 2)."""

    exit_code = 2


class UsageError(HhsyncError):
    """The command line asks for something impossible (exit 2)."""

    exit_code = 2


class SourceError(HhsyncError):
    """The fabric's Kubernetes API or file source could not be read completely."""


class NetboxError(HhsyncError):
    """NetBox refused, failed or could not be reached; `data` holds NetBox's own error body and
    `status` its HTTP status (None when it did not answer)."""

    def __init__(self, message: str, data: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.data = data
        self.status = status


class BusyError(HhsyncError):
    """Another run holds the fabric's lock (exit 3)."""

    exit_code = 3


class DeadlineExceeded(HhsyncError):
    """The run's deadline passed; `phase` says where it was."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"deadline exceeded after {phase}")
        self.phase = phase


class Interrupted(HhsyncError):
    """SIGTERM or SIGINT asked the run to stop; it stopped at a safe point."""
