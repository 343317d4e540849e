"""A fabric under test: a fake Kubernetes API with the Hedgehog CRDs, the real NetBox behind a
counting/fault-injecting proxy, and a config file pointing hhsync at both."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynetbox
import pytest
from typer.testing import CliRunner, Result

from hhsync.cli import app
from tests.harness.fakekube import FakeKube
from tests.harness.netbox import NetBoxInstance, reads_retried
from tests.harness.proxy import FaultProxy
from tests.shared import hedgehog


def shared(relative: str) -> Path:
    """A file of shared/hedgehog (see tests/shared.py)."""
    return hedgehog(relative)


BOOKKEEPING = {  # writes that are not inventory: set-up, the site, its sync state and journal
    ("POST", "/api/extras/tags/"),
    ("POST", "/api/extras/custom-fields/"),
    ("POST", "/api/dcim/sites/"),
    ("PATCH", "/api/dcim/sites/"),
    ("POST", "/api/extras/journal-entries/"),
}


def inventory_writes(fabric: Fabric) -> list[tuple[str, str]]:
    return [
        (r.method, r.path) for r in fabric.proxy.writes() if (r.method, r.path) not in BOOKKEEPING
    ]


def state_only(fabric: Fabric) -> bool:
    """A no-op run's writes: exactly one PATCH of the site's sync state."""
    return [(r.method, r.path) for r in fabric.proxy.writes()] == [("PATCH", "/api/dcim/sites/")]


def golden(name: str, text: str) -> str:
    """The golden file's text; UPDATE_GOLDEN=1 rewrites it from `text` (review the diff!)."""
    path = Path(__file__).parent / "golden" / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    return path.read_text()


@dataclass
class Fabric:
    """One fabric `dc1` on site `dc1`, and helpers to run hhsync against it."""

    tmp: Path
    kube: FakeKube
    proxy: FaultProxy
    netbox: NetBoxInstance
    config: Path
    extra: dict[str, str] = field(default_factory=dict)

    def write_config(self, fabric: str = "", netbox: str = "", **fabrics: str) -> Path:
        """(Re)write config.toml; `fabric` adds keys to [fabrics.dc1]."""
        text = (
            f'[netbox]\nurl = "{self.proxy.url}"\ntoken_file = "token"\ntimeout = 20\n{netbox}\n'
            f'[run]\nstate_dir = "{self.tmp / "state"}"\n[defaults]\ntimeout = 5\n'
            f'[fabrics.dc1]\nsite = "dc1"\nkubeconfig = "kubeconfig"\n{fabric}\n'
        )
        for name, body in fabrics.items():
            text += f"[fabrics.{name}]\n{body}\n"
        self.config.write_text(text)
        return self.config

    def cli(self, *args: str) -> Result:
        """hhsync in this process (fast); stdout and stderr apart."""
        env = {"HHSYNC_NETBOX_TOKEN": "", "CREDENTIALS_DIRECTORY": "", "COLUMNS": "200"}
        return CliRunner().invoke(app, ["--config", str(self.config), *args], env=env)

    def run(
        self, *args: str, timeout: float = 120, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """hhsync as its own process (for signals, exit codes, real stdout)."""
        env = {k: v for k, v in os.environ.items() if k not in ("HHSYNC_NETBOX_TOKEN",)}
        return subprocess.run(
            [sys.executable, "-m", "hhsync", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            **kwargs,
        )

    def api(self) -> pynetbox.api:
        """An independent reader of NetBox (pynetbox, straight to the server, no proxy)."""
        api = pynetbox.api(self.netbox.url, token=self.netbox.token)
        api.http_session = reads_retried(api.http_session)
        return api

    def load(self, path: Path | str) -> None:
        self.kube.load_yaml(path)


def open_fabric(nb: NetBoxInstance, tmp: Path, kube: FakeKube, proxy: FaultProxy) -> Fabric:
    """Fabric dc1 in `tmp`: the Hedgehog CRDs installed, a kubeconfig, the token, a config."""
    kube.install_hedgehog_crds()
    kube.write_kubeconfig(tmp / "kubeconfig")
    token = tmp / "token"
    token.write_text(nb.token + "\n")
    token.chmod(0o600)
    fab = Fabric(tmp, kube, proxy, nb, tmp / "config.toml")
    fab.write_config()
    return fab


@pytest.fixture
def fabric(nb: NetBoxInstance, tmp_path: Path) -> Iterator[Fabric]:
    with FakeKube() as kube, FaultProxy(nb.url) as proxy:
        yield open_fabric(nb, tmp_path, kube, proxy)


@pytest.fixture
def branched(bnb: NetBoxInstance, tmp_path: Path) -> Iterator[Fabric]:
    """Fabric dc1 against the NetBox with the branching plugin."""
    with FakeKube() as kube, FaultProxy(bnb.url) as proxy:
        yield open_fabric(bnb, tmp_path, kube, proxy)
