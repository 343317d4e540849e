"""Malformed configuration an operator would write, each with its exact message.

tests/unit/test_config.py covers the common mistakes; these are the ones it misses: a typo'd
nested table, values of the wrong type or out of range (0, negative, inf, nan), an empty or
non-UTF-8 file, `source = "file:"` with nothing after it, a directory where a file belongs, a
token pasted into the config, and bad token files (empty, a directory). Every message names the
file and the key path, and goes to stderr with exit 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hhsync.cli import app
from hhsync.config import load_config, load_token
from hhsync.errors import ConfigError

TOKEN = "nbt_abcdefghijkl.0123456789012345678901234567890123456789"
NETBOX = '[netbox]\nurl = "https://nb.example"\ntoken_file = "token"\n'
FABRIC = '[fabrics.dc1]\nsite = "dc1"\nkubeconfig = "kube"\n'


def write(tmp_path: Path, text: str | bytes) -> Path:
    (tmp_path / "kube").write_text("apiVersion: v1\nkind: Config\n")
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "token").chmod(0o600)
    path = tmp_path / "config.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error(tmp_path: Path, text: str | bytes) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.exit_code == 2
    return str(e.value).replace(str(tmp_path), "TMP")


CASES = [
    (
        "a typo'd nested table under a fabric",
        NETBOX + FABRIC + '[fabrics.dc1.defaults]\ninterval = "5m"\n',
        "TMP/config.toml: [fabrics.dc1] defaults: unknown key",
    ),
    (
        "[fabric] for [fabrics]",
        NETBOX + '[fabric.dc1]\nsite = "dc1"\nkubeconfig = "kube"\n',
        'TMP/config.toml: fabric: unknown key (did you mean "fabrics"?)',
    ),
    (
        "a site key in [defaults]",
        NETBOX + '[defaults]\nsite = "x"\n' + FABRIC,
        "TMP/config.toml: [defaults] site: unknown key",
    ),
    (
        "[netbox] timeout as a duration string",
        NETBOX + 'timeout = "30s"\n' + FABRIC,
        'TMP/config.toml: [netbox] timeout: expected a number of seconds > 0, got "30s"',
    ),
    (
        "[netbox] timeout = 0",
        NETBOX + "timeout = 0\n" + FABRIC,
        "TMP/config.toml: [netbox] timeout: expected a number of seconds > 0, got 0",
    ),
    (
        "[netbox] timeout = inf (TOML allows it; no request may wait forever)",
        NETBOX + "timeout = inf\n" + FABRIC,
        "TMP/config.toml: [netbox] timeout: expected a number of seconds > 0, got inf",
    ),
    (
        "[netbox] timeout = nan",
        NETBOX + "timeout = nan\n" + FABRIC,
        "TMP/config.toml: [netbox] timeout: expected a number of seconds > 0, got nan",
    ),
    (
        "a fabric's Kubernetes timeout = inf",
        NETBOX + FABRIC + "timeout = inf\n",
        "TMP/config.toml: [fabrics.dc1] timeout: expected a number of seconds > 0, got inf",
    ),
    (
        "verify_tls as a string",
        NETBOX + 'verify_tls = "false"\n' + FABRIC,
        'TMP/config.toml: [netbox] verify_tls: expected true or false, got "false"',
    ),
    (
        "an empty file",
        "",
        "TMP/config.toml: [netbox]: required section is missing",
    ),
    (
        "a file of comments",
        "# hhsync\n\n",
        "TMP/config.toml: [netbox]: required section is missing",
    ),
    (
        "non-UTF-8 (Latin-1) bytes",
        b'[netbox]\nurl = "https://nb\xe9.example"\n',
        "TMP/config.toml: the configuration file is not UTF-8 text",
    ),
    (
        "a UTF-8 byte-order mark",
        "\ufeff" + NETBOX + FABRIC,
        "TMP/config.toml:1:1: invalid TOML: Invalid statement",
    ),
    (
        "the same key twice",
        NETBOX + FABRIC + 'site = "dc2"\n',
        "TMP/config.toml:7:13: invalid TOML: Cannot overwrite a value",
    ),
    (
        "interval = 0",
        NETBOX + FABRIC + "interval = 0\n",
        "TMP/config.toml: [fabrics.dc1] interval: "
        'expected a duration like "5m", "300s" or 300, got 0',
    ),
    (
        'interval = "0s"',
        NETBOX + FABRIC + 'interval = "0s"\n',
        "TMP/config.toml: [fabrics.dc1] interval: "
        'expected a duration like "5m", "300s" or 300, got "0s"',
    ),
    (
        "interval as a float",
        NETBOX + FABRIC + "interval = 1.5\n",
        "TMP/config.toml: [fabrics.dc1] interval: "
        'expected a duration like "5m", "300s" or 300, got 1.5',
    ),
    (
        "interval as a TOML date",
        NETBOX + FABRIC + "interval = 2024-01-01\n",
        "TMP/config.toml: [fabrics.dc1] interval: "
        'expected a duration like "5m", "300s" or 300, got 2024-01-01',
    ),
    (
        "deadline = 0",
        NETBOX + FABRIC + "deadline = 0\n",
        "TMP/config.toml: [fabrics.dc1] deadline: "
        'expected a duration like "5m", "300s" or 300, got 0',
    ),
    (
        'heartbeat_stale = "3 min"',
        NETBOX + FABRIC + 'heartbeat_stale = "3 min"\n',
        "TMP/config.toml: [fabrics.dc1] heartbeat_stale: "
        'expected a duration like "5m", "300s" or 300, got "3 min"',
    ),
    (
        "negative max_delete_fraction",
        NETBOX + FABRIC + "max_delete_fraction = -0.1\n",
        "TMP/config.toml: [fabrics.dc1] max_delete_fraction: "
        "expected a number from 0 to 1, got -0.1",
    ),
    (
        "max_delete_fraction = nan",
        NETBOX + FABRIC + "max_delete_fraction = nan\n",
        "TMP/config.toml: [fabrics.dc1] max_delete_fraction: "
        "expected a number from 0 to 1, got nan",
    ),
    (
        'enabled = "yes"',
        NETBOX + FABRIC + 'enabled = "yes"\n',
        'TMP/config.toml: [fabrics.dc1] enabled: expected true or false, got "yes"',
    ),
    (
        "[run] parallel = 2.5",
        NETBOX + "[run]\nparallel = 2.5\n" + FABRIC,
        "TMP/config.toml: [run] parallel: expected a whole number >= 1, got 2.5",
    ),
    (
        "[run] lock_wait = -1",
        NETBOX + "[run]\nlock_wait = -1\n" + FABRIC,
        'TMP/config.toml: [run] lock_wait: expected a duration like "30s", "1m" or 0, got -1',
    ),
    (
        '[run] state_dir = ""',
        NETBOX + '[run]\nstate_dir = ""\n' + FABRIC,
        'TMP/config.toml: [run] state_dir: expected a non-empty string, got ""',
    ),
    (
        'source = "file:" with nothing after it',
        NETBOX + '[fabrics.dc1]\nsite = "dc1"\nsource = "file:"\n',
        'TMP/config.toml: [fabrics.dc1] source: expected "file:PATH", got "file:"',
    ),
    (
        "context with a file source",
        NETBOX + '[fabrics.dc1]\nsite = "dc1"\nsource = "file:kube"\ncontext = "x"\n',
        'TMP/config.toml: [fabrics.dc1] context: only valid with "kubeconfig"',
    ),
    (
        "a directory as the kubeconfig",
        NETBOX + '[fabrics.dc1]\nsite = "dc1"\nkubeconfig = "."\n',
        "TMP/config.toml: [fabrics.dc1] kubeconfig: TMP is a directory, not a file",
    ),
    (
        "a missing ca_bundle",
        NETBOX + 'ca_bundle = "ca.pem"\n' + FABRIC,
        "TMP/config.toml: [netbox] ca_bundle: file TMP/ca.pem does not exist",
    ),
    (
        "[[fabrics]] (an array of tables)",
        NETBOX + '[[fabrics]]\nsite = "dc1"\n',
        "TMP/config.toml: [fabrics]: expected a table, got a list",
    ),
    (
        "a quoted fabric name with a space",
        NETBOX + '[fabrics."dc 1"]\nsite = "dc1"\nkubeconfig = "kube"\n',
        "TMP/config.toml: [fabrics.dc 1]: fabric names must match [a-z0-9][a-z0-9_-]* "
        "(lower-case letters, digits, '-' and '_')",
    ),
    (
        "an upper-case site slug",
        NETBOX + '[fabrics.dc1]\nsite = "DC1"\nkubeconfig = "kube"\n',
        "TMP/config.toml: [fabrics.dc1] site: "
        "expected a NetBox slug (a-z, 0-9, '-', '_'), got \"DC1\"",
    ),
    (
        "url without a host",
        NETBOX.replace("https://nb.example", "https://") + FABRIC,
        'TMP/config.toml: [netbox] url: expected an http:// or https:// URL, got "https://"',
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_mistakes_name_the_place(tmp_path: Path, text: str | bytes, message: str) -> None:
    assert error(tmp_path, text) == message


def test_a_token_pasted_into_the_config_is_refused_without_echoing_it(tmp_path: Path) -> None:
    secret = "nbt_pastedtoken1.fedcba9876543210fedcba9876543210fedcba98"
    message = error(tmp_path, NETBOX + f'token = "{secret}"\n' + FABRIC)
    assert message == 'TMP/config.toml: [netbox] token: unknown key (did you mean "token_file"?)'
    assert secret not in message


def test_the_cli_prints_one_line_on_stderr_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, NETBOX + FABRIC + "interval = 0\n")
    result = CliRunner().invoke(app, ["--config", str(path), "check"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"hhsync: error: {path}: [fabrics.dc1] interval: "
        'expected a duration like "5m", "300s" or 300, got 0\n'
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.write_text("\n  \n"), "[netbox] token_file: file TMP/token is empty"),
        (lambda p: p.write_text(""), "[netbox] token_file: file TMP/token is empty"),
        (
            lambda p: (p.unlink(), p.mkdir()),
            "[netbox] token_file: cannot read TMP/token: Is a directory",
        ),
        (
            lambda p: p.write_bytes(b"nbt_\xff\xfe.x\n"),
            "[netbox] token_file: file TMP/token is not UTF-8 text",
        ),
    ],
    ids=["whitespace only", "empty", "a directory", "not UTF-8"],
)
def test_bad_token_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: object, message: str
) -> None:
    monkeypatch.delenv("HHSYNC_NETBOX_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(tmp_path, NETBOX + FABRIC)
    setup(tmp_path / "token")  # type: ignore[operator]
    config = load_config(path)
    with pytest.raises(ConfigError) as e:
        load_token(config.netbox, config.path)
    assert str(e.value).replace(str(tmp_path), "TMP") == f"TMP/config.toml: {message}"
