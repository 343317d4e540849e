"""Secrets are registered where they are read and redacted from every error and traceback."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import trustme
import typer
import yaml

from hhsync import logs
from hhsync.cli import Cli
from hhsync.errors import HhsyncError
from hhsync.kube.client import KubeSource


def test_a_kubeconfig_s_token_password_and_client_key_are_registered(tmp_path: Path) -> None:
    key = trustme.CA().issue_cert("hhsync").private_key_pem.bytes().decode()
    user = {
        "token": "kubeconfig-token-1b2c3d4e5f",
        "client-key-data": base64.b64encode(key.encode()).decode(),
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    KubeSource(kubeconfig, None, "default").close()
    body = "".join(line for line in key.splitlines() if not line.startswith("-----"))
    text = f"token {user['token']}, key data {user['client-key-data']}, key {key}"
    redacted = logs.redact(text)
    assert "kubeconfig-token-1b2c3d4e5f" not in redacted
    assert user["client-key-data"] not in redacted
    assert all(line not in redacted for line in key.splitlines() if len(line) >= 16), redacted
    assert body[:40] not in redacted


def test_a_traceback_printed_with_v_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    logs.register(["traceback-secret-9a8b7c"])
    try:
        raise HhsyncError("the API said: traceback-secret-9a8b7c is not valid")
    except HhsyncError as e:
        error = e
    with pytest.raises(typer.Exit):
        Cli(None, verbose=1, quiet=False).fail(error)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "traceback-secret-9a8b7c" not in err
    assert "the API said: *** is not valid" in err
