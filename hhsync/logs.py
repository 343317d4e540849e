"""Logging to stderr for the journal, with every known secret redacted from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

_secrets: set[str] = set()


class Redact(logging.Filter):
    """Replaces secrets in the formatted message; a leak through a library stays a '***'."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            for secret in _secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def setup_logging(verbose: int, quiet: bool, secrets: Iterable[str] = ()) -> None:
    _secrets.update(s for s in secrets if s)
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.WARNING)
    if verbose == 1:
        level = logging.INFO
    root = logging.getLogger()
    root.setLevel(level)
    # Retries are reported by hhsync's own error when they run out; below -vv they are noise.
    for chatty in ("urllib3", "kubernetes"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose > 1 else logging.ERROR)
    if not any(getattr(h, "_hhsync", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hhsync: %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(Redact())
        handler._hhsync = True  # type: ignore[attr-defined]
        root.addHandler(handler)
