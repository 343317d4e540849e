"""Config loading: every value, every error message, exactly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hhsync.config import Config, find_config, load_config, load_token
from hhsync.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "kube").write_text("apiVersion: v1\nkind: Config\n")
    (tmp_path / "token").write_text("nbt_abcdefghijkl.0123456789012345678901234567890123456789\n")
    (tmp_path / "token").chmod(0o600)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


NETBOX = '[netbox]\nurl = "https://nb.example"\ntoken_file = "token"\n'


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.exit_code == 2
    return str(e.value).replace(str(tmp_path), "TMP")


def test_full_config_values(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        NETBOX
        + 'verify_tls = false\ntimeout = 12\n[defaults]\ninterval = "10m"\nadopt = true\n'
        + '[run]\nparallel = 2\nlock_wait = "1m"\n'
        + '[fabrics.dc1]\nsite = "dc-1"\nkubeconfig = "kube"\ncontext = "admin"\n'
        + '[fabrics.lab_2]\nsite = "lab"\nsource = "file:kube"\ninterval = 300\n'
        + "deadline = 100\nenabled = false\nmax_delete_fraction = 0.25\n",
    )
    assert config.netbox.url == "https://nb.example"
    assert config.netbox.token_file == tmp_path / "token"
    assert (config.netbox.verify_tls, config.netbox.timeout) == (False, 12.0)
    assert (config.run.parallel, config.run.lock_wait) == (2, 60)
    dc1, lab = config.fabrics["dc1"], config.fabrics["lab_2"]
    assert (dc1.site, dc1.kubeconfig, dc1.context, dc1.source) == (
        "dc-1",
        tmp_path / "kube",
        "admin",
        None,
    )
    assert (dc1.interval, dc1.deadline, dc1.adopt, dc1.enabled) == (600, 480, True, True)
    assert (lab.source, lab.kubeconfig, lab.interval, lab.deadline) == (
        tmp_path / "kube",
        None,
        300,
        100,
    )
    assert (lab.enabled, lab.max_delete_fraction, lab.adopt) == (False, 0.25, True)
    assert config.warnings == (
        f"TLS verification of NetBox is off ([netbox] verify_tls = false in {tmp_path}/"
        "config.toml): anyone in the path can read the token; set ca_bundle instead",
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ('"300"', 300), ('"300s"', 300), ('"5m"', 300), ('"1h30m"', 5400)],
)
def test_durations(tmp_path: Path, text: str, seconds: int) -> None:
    config = load(
        tmp_path, NETBOX + f'[fabrics.a]\nsite = "a"\nsource = "file:kube"\ninterval = {text}\n'
    )
    assert config.fabrics["a"].interval == seconds


FABRIC = '[fabrics.dc1]\nsite = "dc1"\nkubeconfig = "kube"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[netbox]\nurl = "https://x"\ntimeout = \n',
            "TMP/config.toml:3:11: invalid TOML: Invalid value",
        ),
        (
            "[netbox\n",
            "TMP/config.toml:1:8: invalid TOML: Expected ']' at the end of a table declaration",
        ),
        (
            NETBOX + FABRIC + "intreval = 5\n",
            'TMP/config.toml: [fabrics.dc1] intreval: unknown key (did you mean "interval"?)',
        ),
        (NETBOX + "tokn = 1\n" + FABRIC, "TMP/config.toml: [netbox] tokn: unknown key"),
        (
            NETBOX + "[defaults]\nadopt = 1\n" + FABRIC,
            "TMP/config.toml: [defaults] adopt: expected true or false, got 1",
        ),
        ("[fabrics]\n", "TMP/config.toml: [netbox]: required section is missing"),
        ('[netbox]\ntoken_file = "token"\n' + FABRIC, "TMP/config.toml: [netbox] url: required"),
        (
            NETBOX.replace("https://nb.example", "nb.example") + FABRIC,
            'TMP/config.toml: [netbox] url: expected an http:// or https:// URL, got "nb.example"',
        ),
        (NETBOX, "TMP/config.toml: [fabrics]: required section is missing"),
        (
            NETBOX + FABRIC + 'interval = "5 minutes"\n',
            "TMP/config.toml: [fabrics.dc1] interval: "
            'expected a duration like "5m", "300s" or 300, got "5 minutes"',
        ),
        (
            NETBOX + FABRIC + "interval = true\n",
            "TMP/config.toml: [fabrics.dc1] interval: "
            'expected a duration like "5m", "300s" or 300, got true',
        ),
        (
            NETBOX + FABRIC.replace("dc1]", "DC1]"),
            "TMP/config.toml: [fabrics.DC1]: fabric names "
            "must match [a-z0-9][a-z0-9_-]* (lower-case letters, digits, '-' and '_')",
        ),
        (
            NETBOX + FABRIC + FABRIC.replace("fabrics.dc1", "fabrics.dc2"),
            'TMP/config.toml: [fabrics.dc2] site: site "dc1" is already used by fabric "dc1"; '
            "each fabric needs its own site",
        ),
        (
            NETBOX + '[fabrics.dc1]\nkubeconfig = "kube"\n',
            "TMP/config.toml: [fabrics.dc1] site: required (the NetBox site slug for this fabric)",
        ),
        (
            NETBOX + '[fabrics.dc1]\nsite = "dc1"\n',
            'TMP/config.toml: [fabrics.dc1]: set exactly one of "kubeconfig" or "source"',
        ),
        (
            NETBOX + FABRIC + 'source = "file:kube"\n',
            'TMP/config.toml: [fabrics.dc1]: set exactly one of "kubeconfig" or "source"',
        ),
        (
            NETBOX + FABRIC.replace('"kube"', '"missing"'),
            "TMP/config.toml: [fabrics.dc1] kubeconfig: file TMP/missing does not exist",
        ),
        (
            NETBOX + '[fabrics.dc1]\nsite = "dc1"\nsource = "/srv/x"\n',
            'TMP/config.toml: [fabrics.dc1] source: expected "file:PATH", got "/srv/x"',
        ),
        (
            NETBOX + '[fabrics.dc1]\nsite = 3\nkubeconfig = "kube"\n',
            "TMP/config.toml: [fabrics.dc1] site: "
            "expected a NetBox slug (a-z, 0-9, '-', '_'), got 3",
        ),
        (
            NETBOX + FABRIC + "max_delete_fraction = 2\n",
            "TMP/config.toml: [fabrics.dc1] "
            "max_delete_fraction: expected a number from 0 to 1, got 2",
        ),
        (
            NETBOX + FABRIC + 'interval = "1m"\ndeadline = "2m"\n',
            "TMP/config.toml: [fabrics.dc1] deadline: must not be longer than the interval",
        ),
        (
            NETBOX + "[run]\nparallel = 0\n" + FABRIC,
            "TMP/config.toml: [run] parallel: expected a whole number >= 1, got 0",
        ),
        (
            NETBOX + "[fabrics]\ndc1 = 1\n",
            "TMP/config.toml: [fabrics.dc1]: expected a table, got 1",
        ),
    ],
)
def test_errors_name_the_place(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "nope.toml")
    assert str(e.value) == (
        f"{tmp_path}/nope.toml: cannot read the configuration file: No such file or directory"
    )


def test_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(tmp_path, NETBOX + FABRIC)
    monkeypatch.delenv("HHSYNC_NETBOX_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    token = load_token(config.netbox, config.path)
    assert token == "nbt_abcdefghijkl.0123456789012345678901234567890123456789"
    assert repr(token) == "Secret('***')"
    monkeypatch.setenv("HHSYNC_NETBOX_TOKEN", "from-env")
    assert load_token(config.netbox, config.path) == "from-env"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "netbox.token").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_token(config.netbox, config.path) == "from-credential"


def test_token_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HHSYNC_NETBOX_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config = load(tmp_path, NETBOX.replace('"token"', '"gone"') + FABRIC)
    with pytest.raises(ConfigError) as e:
        load_token(config.netbox, config.path)
    assert (
        str(e.value) == f"{tmp_path}/config.toml: [netbox] token_file: file {tmp_path}/gone "
        "does not exist"
    )
    config = load(tmp_path, '[netbox]\nurl = "https://nb"\n' + FABRIC)
    with pytest.raises(ConfigError) as e:
        load_token(config.netbox, config.path)
    assert str(e.value) == (
        f"{tmp_path}/config.toml: [netbox] token_file: required when HHSYNC_NETBOX_TOKEN is not set"
    )
    if os.geteuid() != 0:  # root reads anything
        (tmp_path / "token").chmod(0)
        config = load(tmp_path, NETBOX + FABRIC)
        with pytest.raises(ConfigError, match=r"cannot read .*Permission denied"):
            load_token(config.netbox, config.path)


def test_token_file_readable_by_others_warns(tmp_path: Path) -> None:
    path = write(tmp_path, NETBOX + FABRIC)
    (tmp_path / "token").chmod(0o644)
    assert load_config(path).warnings == (
        f"token file {tmp_path}/token is readable by group or others (mode 644); "
        f"run: chmod 600 {tmp_path}/token",
    )


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HHSYNC_CONFIG", str(tmp_path / "env.toml"))
    assert find_config(tmp_path / "explicit.toml") == tmp_path / "explicit.toml"
    assert find_config(None) == tmp_path / "env.toml"
    monkeypatch.delenv("HHSYNC_CONFIG")
    monkeypatch.setattr("hhsync.config.DEFAULT_PATHS", (tmp_path / "a.toml", tmp_path / "b.toml"))
    (tmp_path / "b.toml").touch()
    assert find_config(None) == tmp_path / "b.toml"
    (tmp_path / "b.toml").unlink()
    with pytest.raises(ConfigError) as e:
        find_config(None)
    assert str(e.value) == (
        "no configuration file: pass --config or set HHSYNC_CONFIG "
        f"(looked in {tmp_path}/a.toml, {tmp_path}/b.toml)"
    )


def test_example_config_loads() -> None:
    config = load_config(ROOT / "examples" / "config.toml")
    assert list(config.fabrics) == ["dc1", "lab"]
    assert config.fabrics["dc1"].kubeconfig == ROOT / "examples" / "dc1.kubeconfig"
    assert config.fabrics["dc1"].interval == 300
    assert config.fabrics["lab"].source == ROOT / "examples" / "fabric"
    assert config.fabrics["lab"].enabled is False
    assert config.netbox.token_file == ROOT / "examples" / "netbox.token"
