"""systemd units as values: rendered text (golden files), quoting, and the bootstrap plan."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from hhsync.config import Config, FabricConfig, NetboxConfig, RunConfig
from hhsync.errors import ConfigError
from hhsync.timers import (
    Installed,
    Program,
    Remove,
    Run,
    Target,
    Write,
    backstop,
    plan_bootstrap,
    quote,
    random_delay,
    render_dropins,
    render_service,
    render_timer,
    unit_name,
)
from tests.harness.units import exec_start_argv

GOLDEN = Path(__file__).parent / "golden" / "timers"
PROGRAM = Program(("/usr/bin/hhsync",), (Path("/usr"),))
SYSTEM = Target("system", Path("/etc/systemd/system"))
P = PurePosixPath


def golden(name: str, text: str) -> str:
    """The golden file's text; UPDATE_GOLDEN=1 rewrites it from `text` (review the diff!)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path.read_text()


def fabric(name: str, **values: object) -> FabricConfig:
    return FabricConfig(name=name, site=name, source=Path(f"/srv/wiring/{name}"), **values)  # type: ignore[arg-type]


def config(
    *fabrics: FabricConfig,
    path: str = "/etc/hhsync/config.toml",
    credential: str | None = "/etc/hhsync/netbox.token",
    run: RunConfig | None = None,
) -> Config:
    netbox = NetboxConfig("https://nb.example", Path(credential) if credential else None)
    fabrics = fabrics or (fabric("dc1"), fabric("lab-2", interval=900, deadline=600))
    return Config(Path(path), netbox, {f.name: f for f in fabrics}, run or RunConfig())


def test_service_golden() -> None:
    text = render_service(config(), PROGRAM)
    assert text == golden("hhsync-sync@.service", text)
    assert "ProtectHome=yes" in text
    assert "LoadCredential=netbox.token:/etc/hhsync/netbox.token" in text


def test_service_for_a_user_manager_leaves_out_privileged_settings() -> None:
    text = render_service(config(), PROGRAM, user=True)
    assert text == golden("hhsync-sync@.service.user", text)
    settings = {line.partition("=")[0] for line in text.splitlines() if "=" in line}
    assert not settings & {"ProtectSystem", "PrivateTmp", "CapabilityBoundingSet", "ProtectHome"}
    assert {"NoNewPrivileges", "SystemCallFilter", "LoadCredential"} <= settings


def test_service_with_files_in_home_and_writable_paths() -> None:
    run = RunConfig(
        state_dir=Path("/srv/hh state"), metrics_file=Path("/var/lib/node 100%/hhsync.prom")
    )
    text = render_service(config(path="/root/hhsync/config.toml", run=run), PROGRAM)
    assert text == golden("hhsync-sync@.service.home", text)
    assert "ProtectHome=read-only" in text
    assert 'ReadWritePaths="-/srv/hh state" "-/var/lib/node 100%%"\n' in text


@pytest.mark.parametrize("where", ["/home/ops/venv", "/root/.pyenv/versions/3.11"])
def test_hhsync_installed_under_home_needs_read_only_home(where: str) -> None:
    program = Program((f"{where}/bin/hhsync",), (Path(where),))
    assert "ProtectHome=read-only" in render_service(config(), program)


def test_timer_golden() -> None:
    text = render_timer()
    assert text == golden("hhsync-sync@.timer", text)
    assert "Persistent=" not in text.replace("No Persistent=", "")


def test_dropins_golden() -> None:
    cfg = config()
    for f in cfg.fabrics.values():
        for path, text in render_dropins(cfg, f).items():
            assert text == golden(str(path).replace("/", "--"), text)


def test_dropin_values() -> None:
    cfg = config(run=RunConfig(lock_wait=30))
    dc1 = cfg.fabrics["dc1"]  # interval 5m, deadline 4m
    assert backstop(cfg, dc1) == 30 + 240 + 15 + 60 + 15  # lock, deadline, grace, record, slack
    assert random_delay(dc1) == 30
    assert random_delay(fabric("slow", interval=3600, deadline=60)) == 60
    assert random_delay(fabric("fast", interval=5, deadline=5)) == 0
    assert render_dropins(cfg, dc1)[P("hhsync-sync@dc1.service.d/hhsync.conf")].endswith(
        "TimeoutStartSec=6m\n"
    )


def test_no_token_file_no_credential_and_a_warning() -> None:
    cfg = config(credential=None)
    assert "LoadCredential" not in render_service(cfg, PROGRAM)
    plan = plan_bootstrap(cfg, PROGRAM, SYSTEM, Installed())
    assert plan.warnings == (
        "/etc/hhsync/config.toml: [netbox] has no token_file, so the units pass no NetBox "
        "token; set token_file, or add LoadCredential=netbox.token:PATH in a drop-in",
    )


def test_token_path_is_escaped_or_refused() -> None:
    assert "LoadCredential=netbox.token:/etc/100%%/t k\n" in render_service(
        config(credential="/etc/100%/t k"), PROGRAM
    )
    with pytest.raises(ConfigError, match="token_file: '/etc/a\\\\nb' cannot be passed"):
        render_service(config(credential="/etc/a\nb"), PROGRAM)


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("/usr/bin/hhsync", "/usr/bin/hhsync"),
        ("/etc/my config.toml", '"/etc/my config.toml"'),
        ("/etc/100%.toml", "/etc/100%%.toml"),
        ("/etc/$HOME.toml", '"/etc/$$HOME.toml"'),
        ('/etc/a"b\\c;d', '"/etc/a\\"b\\\\c;d"'),
        ("/etc/it's", '"/etc/it\'s"'),
        (";", '";"'),
        ("", '""'),
    ],
)
def test_quote_for_exec_lines(word: str, quoted: str) -> None:
    assert quote(word, exec_line=True) == quoted


def test_quote_refuses_control_characters() -> None:
    with pytest.raises(ConfigError, match="contains a control character"):
        quote("/etc/a\nExecStartPre=/bin/sh")


def test_exec_start_reads_back_exactly() -> None:
    path = "/srv/my cfg/$HOME;\"x\"\\%i 'q'.toml"
    text = render_service(config(path=path), PROGRAM)
    assert exec_start_argv(text, "lab-2") == ["/usr/bin/hhsync", "--config", path, "sync", "lab-2"]


def test_python_m_form_when_there_is_no_console_script() -> None:
    program = Program(("/opt/py/bin/python3", "-m", "hhsync"))
    text = render_service(config(), program)
    exec_start = "ExecStart=/opt/py/bin/python3 -m hhsync --config /etc/hhsync/config.toml sync %i"
    assert exec_start in text


def test_unit_names() -> None:
    assert unit_name("lab-2", "timer") == "hhsync-sync@lab-2.timer"
    with pytest.raises(ConfigError, match=r'fabric "Lab/2" cannot be a systemd unit instance'):
        unit_name("Lab/2", "timer")
    assert unit_name("a" * 235, "service")
    with pytest.raises(ConfigError, match="rename it to at most 235 characters"):
        unit_name("a" * 236, "timer")


def _installed(*fabrics: FabricConfig, enabled: tuple[str, ...] = ()) -> Installed:
    """The unit directory after a bootstrap with these fabrics."""
    plan = plan_bootstrap(config(*fabrics), PROGRAM, SYSTEM, Installed())
    files = {s.path: s.text for s in plan.steps if isinstance(s, Write)}
    return Installed(files, frozenset(enabled))


def test_first_bootstrap_on_the_running_system() -> None:
    plan = plan_bootstrap(config(), PROGRAM, SYSTEM, Installed())
    assert [s.path for s in plan.steps if isinstance(s, Write)] == [
        P("hhsync-sync@.service"),
        P("hhsync-sync@.timer"),
        P("hhsync-sync@dc1.timer.d/hhsync.conf"),
        P("hhsync-sync@dc1.service.d/hhsync.conf"),
        P("hhsync-sync@lab-2.timer.d/hhsync.conf"),
        P("hhsync-sync@lab-2.service.d/hhsync.conf"),
    ]
    assert [s.argv for s in plan.steps if isinstance(s, Run)] == [
        ("systemctl", "daemon-reload"),
        ("systemctl", "enable", "--now", "hhsync-sync@dc1.timer"),
        ("systemctl", "enable", "--now", "hhsync-sync@lab-2.timer"),
    ]
    assert plan.unchanged == ()
    assert plan.warnings == ()


def test_second_bootstrap_changes_nothing() -> None:
    cfg = config()
    installed = _installed(*cfg.fabrics.values(), enabled=("dc1", "lab-2"))
    plan = plan_bootstrap(cfg, PROGRAM, SYSTEM, installed)
    assert not [s for s in plan.steps if isinstance(s, Write | Remove)]
    assert ("systemctl", "daemon-reload") not in [s.argv for s in plan.steps if isinstance(s, Run)]
    assert len(plan.unchanged) == 6


def test_offline_and_user_commands() -> None:
    image = Target("offline", Path("/img/etc/systemd/system"), Path("/img"))
    plan = plan_bootstrap(config(fabric("dc1")), PROGRAM, image, Installed())
    assert [s.argv for s in plan.steps if isinstance(s, Run)] == [
        ("systemctl", "--root=/img", "enable", "hhsync-sync@dc1.timer")
    ]
    user = Target("user", Path("/home/ops/.config/systemd/user"))
    plan = plan_bootstrap(config(fabric("dc1")), PROGRAM, user, Installed())
    assert [s.argv for s in plan.steps if isinstance(s, Run)] == [
        ("systemctl", "--user", "daemon-reload"),
        ("systemctl", "--user", "enable", "--now", "hhsync-sync@dc1.timer"),
    ]
    assert "PrivateTmp" not in plan.files[P("hhsync-sync@.service")]


def test_no_enable_writes_only() -> None:
    plan = plan_bootstrap(config(), PROGRAM, SYSTEM, Installed(), enable=False)
    assert [s.argv for s in plan.steps if isinstance(s, Run)] == [("systemctl", "daemon-reload")]


def test_disabled_fabric_loses_its_timer_without_prune() -> None:
    installed = _installed(fabric("dc1"), fabric("lab-2"), enabled=("dc1", "lab-2"))
    cfg = config(fabric("dc1"), fabric("lab-2", enabled=False))
    plan = plan_bootstrap(cfg, PROGRAM, SYSTEM, installed)
    assert [s for s in plan.steps if not isinstance(s, Write)] == [
        Run(("systemctl", "disable", "--now", "hhsync-sync@lab-2.timer")),
        Remove(P("hhsync-sync@lab-2.service.d/hhsync.conf")),
        Remove(P("hhsync-sync@lab-2.timer.d/hhsync.conf")),
        Run(("systemctl", "daemon-reload")),
        Run(("systemctl", "enable", "--now", "hhsync-sync@dc1.timer")),
    ]


def test_removed_fabric_is_kept_with_a_warning_unless_prune() -> None:
    installed = _installed(fabric("dc1"), fabric("old"), enabled=("dc1", "old", "gone"))
    cfg = config(fabric("dc1"))
    plan = plan_bootstrap(cfg, PROGRAM, SYSTEM, installed)
    assert not [s for s in plan.steps if isinstance(s, Write | Remove)]
    assert plan.warnings == (
        "timers of fabrics no longer in the config remain: gone, old; "
        "pass --prune to disable and remove them",
    )
    plan = plan_bootstrap(cfg, PROGRAM, SYSTEM, installed, prune=True)
    assert plan.warnings == ()
    assert list(plan.steps) == [
        Run(("systemctl", "disable", "--now", "hhsync-sync@gone.timer")),
        Run(("systemctl", "disable", "--now", "hhsync-sync@old.timer")),
        Remove(P("hhsync-sync@old.service.d/hhsync.conf")),
        Remove(P("hhsync-sync@old.timer.d/hhsync.conf")),
        Run(("systemctl", "daemon-reload")),
        Run(("systemctl", "enable", "--now", "hhsync-sync@dc1.timer")),
    ]


def test_files_in_a_private_tmp_are_warned_about() -> None:
    cfg = config(fabric("dc1"), path="/tmp/hh/config.toml")
    plan = plan_bootstrap(cfg, PROGRAM, SYSTEM, Installed())
    assert plan.warnings == (
        "the service cannot see /tmp/hh/config.toml: PrivateTmp=yes gives it its own /tmp and "
        "/var/tmp; move these files elsewhere, e.g. to /etc/hhsync",
    )
