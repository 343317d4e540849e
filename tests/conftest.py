"""Shared pytest fixtures.

NetBox: ``netbox`` is one real NetBox 4.7.3 per test session (see tests/harness/netbox.py);
``nb`` is the same instance reset to an empty database before each test. Tests using either are
marked ``netbox`` automatically (``-m "not netbox"`` deselects them). If NetBox cannot be set up
they fail with the setup error, never skip; ``HHSYNC_SKIP_NETBOX=1`` skips them on purpose.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.harness.netbox import (
    NetBoxEnv,
    NetBoxInstance,
    NetBoxSetupError,
    ensure_netbox_env,
    start_free_netbox,
)

T = TypeVar("T")
NETBOX_FIXTURES = {"netbox_env", "netbox", "nb", "branching_netbox", "bnb"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if NETBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.netbox)


def _or_fail(what: str, call: Callable[[], T]) -> T:
    """Return call(); a NetBoxSetupError fails the test with its message (never a skip)."""
    try:
        return call()
    except NetBoxSetupError as exc:
        message = f"{what} failed: {exc}"
    pytest.fail(message, pytrace=False)  # outside `except`: no chained-traceback noise


def _live_log(config: pytest.Config) -> Callable[[str], None]:
    """Show setup progress live, past output capturing: a cold setup takes minutes."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return print

    def log(message: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[netbox] {message}")

    return log


@pytest.fixture(scope="session")
def netbox_env(request: pytest.FixtureRequest) -> NetBoxEnv:
    """The installed NetBox (venv, schema dump, template DB); set up on first use."""
    if os.environ.get("HHSYNC_SKIP_NETBOX") == "1":
        pytest.skip("HHSYNC_SKIP_NETBOX=1: real-NetBox tests skipped on request")
    return _or_fail("NetBox setup", lambda: ensure_netbox_env(log=_live_log(request.config)))


@pytest.fixture(scope="session")
def netbox(netbox_env: NetBoxEnv) -> Iterator[NetBoxInstance]:
    """A running NetBox for the whole session, in a test slot no other pytest process uses."""
    instance = _or_fail("NetBox start", lambda: start_free_netbox(netbox_env))
    try:
        yield instance
    finally:
        instance.kill()  # throwaway data: don't wait up to 5 s for keep-alive connections
        instance.stop()  # releases the slot


@pytest.fixture
def nb(netbox: NetBoxInstance) -> NetBoxInstance:
    """The session's NetBox with an empty database (admin + readonly users and tokens only)."""

    def reset() -> None:
        if not netbox.running:  # a previous test killed it and did not restart it
            netbox.start()
        netbox.reset()

    _or_fail("NetBox reset", reset)
    return netbox


@pytest.fixture(scope="session")
def branching_netbox(netbox_env: NetBoxEnv) -> Iterator[NetBoxInstance]:
    """A second NetBox for the session, with the netbox-branching plugin and an rqworker."""
    instance = _or_fail(
        "NetBox start (branching)", lambda: start_free_netbox(netbox_env, branching=True)
    )
    try:
        yield instance
    finally:
        instance.kill()
        instance.stop()


@pytest.fixture
def bnb(branching_netbox: NetBoxInstance) -> NetBoxInstance:
    """The branching NetBox with an empty database."""

    def reset() -> None:
        if not branching_netbox.running:
            branching_netbox.start()
        branching_netbox.reset()

    _or_fail("NetBox reset", reset)
    return branching_netbox
