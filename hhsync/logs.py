"""Logging to stderr for the journal, and the secrets that nothing hhsync prints may show.

Every known secret (the NetBox token, URL credentials, the Kubernetes credentials a kubeconfig
gives) is registered here once it is read; log records, errors and tracebacks pass `redact`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

MIN_SECRET = 4  # shorter strings would redact ordinary words
_secrets: set[str] = set()


def register(secrets: Iterable[str | None]) -> None:
    """Remember secrets to redact from everything printed or logged from now on."""
    _secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***` (longest first: a token before
    the half of it that is a secret too)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class Redact(logging.Filter):
    """Replaces secrets in the formatted message; a leak through a library stays a '***'."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg, record.args = redact(record.getMessage()), None
        return True


def setup_logging(verbose: int, quiet: bool, secrets: Iterable[str] = ()) -> None:
    register(secrets)
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
