"""`hhsync bootstrap-timers` for real: files on disk, read back by systemd's own tools.

No running systemd is needed: `systemctl --root` enables offline, and `systemd-analyze verify`
and `security --offline=yes` read unit files directly (../shared/facts/k8s-and-systemd.md,
section 4). Live system and user managers are exercised with a fake `systemctl` on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hhsync.cli import app
from hhsync.config import load_config
from hhsync.systemd import this_program
from hhsync.timers import Program, render_service
from tests.harness.units import exec_start_argv

UNITS = Path("etc/systemd/system")
HHSYNC = Path(sys.executable).parent / "hhsync"  # the installed console script
MAX_EXPOSURE = 2.0
TEMPLATE_TIMER = "/etc/systemd/system/hhsync-sync@.timer"  # what offline enable links to


def rendered_argv(config: Path, fabric: str) -> list[str]:
    """The exact argv `hhsync-sync@FABRIC.service` runs with this config, as bootstrap renders it.

    For end-to-end tests: run it with CREDENTIALS_DIRECTORY holding `netbox.token` and
    STATE_DIRECTORY set, as systemd would.
    """
    return exec_start_argv(render_service(load_config(config), this_program()), fabric)


@pytest.fixture(autouse=True)
def systemd_tools() -> None:
    missing = [t for t in ("systemctl", "systemd-analyze") if shutil.which(t) is None]
    if missing:
        message = f"{', '.join(missing)} missing: apt-get install systemd (make test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def write_config(directory: Path, *, lab: bool = True) -> Path:
    """dc1 (kubeconfig, 5m), lab-2 (file source, 15m) unless `lab` is false, off (disabled)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dc1.kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    (directory / "wiring.yaml").write_text("")
    (directory / "netbox.token").write_text("nbt_0123456789abcdef\n")
    (directory / "netbox.token").chmod(0o600)
    text = (
        '[netbox]\nurl = "https://netbox.example"\ntoken_file = "netbox.token"\n'
        '[fabrics.dc1]\nsite = "dc1"\nkubeconfig = "dc1.kubeconfig"\n'
        '[fabrics.off]\nsite = "off"\nsource = "file:wiring.yaml"\nenabled = false\n'
    )
    if lab:
        text += '[fabrics.lab-2]\nsite = "lab"\nsource = "file:wiring.yaml"\ninterval = "15m"\n'
    path = directory / "config.toml"
    path.write_text(text)
    return path


def bootstrap(config: Path, *args: str, **env: str | None) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), "bootstrap-timers", *args], env=env)


def tree(root: Path) -> set[str]:
    """Every file and symlink below `root`, relative, symlinks shown with their target."""
    found = set()
    for path in root.rglob("*"):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found.add(f"{rel} -> {os.readlink(path)}")
        elif path.is_file():
            found.add(rel)
    return found


def is_enabled(root: Path, *units: str) -> list[str]:
    done = subprocess.run(
        ["systemctl", f"--root={root}", "is-enabled", *units],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


def analyze(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, check=False, cwd=cwd
    )


def dump(units: Path, *names: str) -> str:
    """systemd's own view of the units (verify's debug dump): drop-ins applied, Exec parsed."""
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(f"./{n}" for n in names)],
        capture_output=True,
        text=True,
        check=False,
        cwd=units,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "debug"},
    )
    return done.stdout


def dump_words(line: str) -> list[str]:
    """Split a dump's "Command Line:" (systemd's quoting: double quotes, backslash escapes)."""
    words, word, quoted, chars = [], None, False, iter(line)
    for c in chars:
        if c == "\\":
            word = (word or "") + next(chars)
        elif c == '"':
            word, quoted = word or "", not quoted
        elif c == " " and not quoted:
            if word is not None:
                words.append(word)
            word = None
        else:
            word = (word or "") + c
    return [*words, word] if word is not None else words


def exposure(unit: Path, *extra: str) -> float:
    done = analyze(*extra, "security", "--offline=yes", "--no-pager", str(unit))
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert m, done.stdout + done.stderr
    return float(m[1])


def installed_files(fabrics: tuple[str, ...]) -> set[str]:
    files = {"hhsync-sync@.service", "hhsync-sync@.timer"}
    for name in fabrics:
        files |= {
            f"hhsync-sync@{name}.timer.d/hhsync.conf",
            f"hhsync-sync@{name}.service.d/hhsync.conf",
            f"timers.target.wants/hhsync-sync@{name}.timer -> {TEMPLATE_TIMER}",
        }
    return {f"{UNITS}/{f}" for f in files}


def test_install_into_an_image_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    first = bootstrap(config, "--unit-dir", str(image))
    assert first.exit_code == 0, first.stderr
    units = image / UNITS
    assert first.stdout.splitlines() == [
        f"wrote     {units}/hhsync-sync@.service",
        f"wrote     {units}/hhsync-sync@.timer",
        f"wrote     {units}/hhsync-sync@dc1.timer.d/hhsync.conf",
        f"wrote     {units}/hhsync-sync@dc1.service.d/hhsync.conf",
        f"wrote     {units}/hhsync-sync@lab-2.timer.d/hhsync.conf",
        f"wrote     {units}/hhsync-sync@lab-2.service.d/hhsync.conf",
        f"ran       systemctl --root={image} enable hhsync-sync@dc1.timer",
        f"ran       systemctl --root={image} enable hhsync-sync@lab-2.timer",
        "6 written, 0 removed, 0 unchanged",
    ]
    assert tree(image) == installed_files(("dc1", "lab-2"))
    second = bootstrap(config, "--unit-dir", str(image))
    assert second.exit_code == 0, second.stderr
    lines = second.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["unchanged"] * 6 + ["ran"] * 2
    assert lines[-1] == "no changes (6 files unchanged)"
    assert tree(image) == installed_files(("dc1", "lab-2"))
    units_ = ("hhsync-sync@dc1.timer", "hhsync-sync@lab-2.timer", "hhsync-sync@off.timer")
    assert is_enabled(image, *units_) == ["enabled", "enabled", "disabled"]


def test_unit_dir_may_name_the_images_unit_directory_itself(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    (image / UNITS).mkdir(parents=True)
    result = bootstrap(config, "--unit-dir", str(image / UNITS))
    assert result.exit_code == 0, result.stderr
    assert tree(image) == installed_files(("dc1", "lab-2"))


def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    assert bootstrap(config, "--unit-dir", str(image)).exit_code == 0
    units = image / UNITS
    names = ["hhsync-sync@.service", "hhsync-sync@.timer"] + [
        f"hhsync-sync@{f}.{kind}" for f in ("dc1", "lab-2") for kind in ("service", "timer")
    ]
    done = analyze("verify", "--man=no", *(f"./{n}" for n in names), cwd=units)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")
    # systemd itself reads the drop-ins and the command line as intended:
    debug = dump(units, "hhsync-sync@dc1.service", "hhsync-sync@dc1.timer")
    assert f"Command Line: {HHSYNC} --config {config} sync dc1\n" in debug
    assert "TimeoutStartSec: 6min\n" in debug
    assert "OnUnitInactiveSec: 5min\n" in debug


def test_service_exposure_is_at_most_2(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    assert bootstrap(config, "--unit-dir", str(image)).exit_code == 0
    installed = exposure(image / UNITS / "hhsync-sync@dc1.service")
    # The same units for an install outside /home and /root (ProtectHome=yes):
    outside = tmp_path / "outside"
    outside.mkdir()
    text = render_service(load_config(config), Program((str(HHSYNC),)))
    assert "ProtectHome=yes" in text
    (outside / "hhsync-sync@.service").write_text(text)
    strict = exposure(outside / "hhsync-sync@.service")
    assert installed <= MAX_EXPOSURE, installed
    assert strict <= MAX_EXPOSURE, strict


def test_prune_disables_and_removes_exactly_the_removed_fabric(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    assert bootstrap(config, "--unit-dir", str(image)).exit_code == 0
    local = image / UNITS / "hhsync-sync@dc1.timer.d" / "local.conf"
    local.write_text("[Timer]\nAccuracySec=5s\n")  # an operator's own drop-in: never touched
    write_config(tmp_path / "conf", lab=False)
    kept = bootstrap(config, "--unit-dir", str(image))
    assert kept.exit_code == 0
    assert "remain: lab-2; pass --prune to disable and remove them" in kept.stderr
    assert tree(image) == installed_files(("dc1", "lab-2")) | {
        f"{UNITS}/{local.parent.name}/local.conf"
    }
    before = tree(image)
    pruned = bootstrap(config, "--unit-dir", str(image), "--prune")
    assert pruned.exit_code == 0, pruned.stderr
    units = image / UNITS
    assert [x for x in pruned.stdout.splitlines() if not x.startswith("unchanged")] == [
        f"ran       systemctl --root={image} disable hhsync-sync@lab-2.timer",
        f"removed   {units}/hhsync-sync@lab-2.service.d/hhsync.conf",
        f"removed   {units}/hhsync-sync@lab-2.timer.d/hhsync.conf",
        f"ran       systemctl --root={image} enable hhsync-sync@dc1.timer",
        "0 written, 2 removed, 4 unchanged",
    ]
    assert before - tree(image) == installed_files(("lab-2",)) - installed_files(())
    assert tree(image) - before == set()
    assert not (units / "hhsync-sync@lab-2.timer.d").exists()
    assert is_enabled(image, "hhsync-sync@dc1.timer", "hhsync-sync@lab-2.timer") == [
        "enabled",
        "disabled",
    ]


def test_dry_run_prints_every_file_and_command_and_changes_nothing(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    result = bootstrap(config, "--unit-dir", str(image), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert tree(image) == set()
    out = result.stdout
    service = render_service(load_config(config), this_program())
    for line in service.splitlines():
        assert f"    {line}".rstrip() + "\n" in out
    assert f"would write  {image / UNITS}/hhsync-sync@lab-2.timer.d/hhsync.conf\n" in out
    assert "    OnUnitInactiveSec=15m\n" in out
    assert f"would run    systemctl --root={image} enable hhsync-sync@dc1.timer\n" in out
    assert out.endswith("dry run, nothing changed: 6 written, 0 removed, 0 unchanged\n")


def test_dry_run_for_the_running_system_needs_no_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hhsync.systemd.os.geteuid", lambda: 1000)
    result = bootstrap(write_config(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "would write  /etc/systemd/system/hhsync-sync@.service\n" in result.stdout
    assert "would run    systemctl daemon-reload\n" in result.stdout
    assert "would run    systemctl enable --now hhsync-sync@lab-2.timer\n" in result.stdout


def test_system_units_need_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hhsync.systemd.os.geteuid", lambda: 1000)
    result = bootstrap(write_config(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (
        "hhsync: error: writing system units to /etc/systemd/system needs root: run it with "
        "sudo, or pass --user for units of your own user's service manager\n"
    )


def test_missing_systemctl_is_a_clear_error_before_anything_is_written(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    (tmp_path / "empty").mkdir()
    result = bootstrap(config, "--unit-dir", str(image), PATH=str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "hhsync: error: systemctl is not on PATH, and bootstrap-timers needs it to enable the "
        "timers: install systemd, or only write the files with --unit-dir ROOT --no-enable\n"
    )
    assert tree(image) == set()
    files_only = bootstrap(
        config, "--unit-dir", str(image), "--no-enable", PATH=str(tmp_path / "empty")
    )
    assert files_only.exit_code == 0, files_only.stderr
    assert len(tree(image)) == 6


def fake_systemctl(tmp_path: Path, fail: str = "") -> tuple[Path, Path]:
    """A `systemctl` that logs its arguments (and fails with `fail` on stderr, if given)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "systemctl.log"
    bin_dir.mkdir()
    script = f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\n'
    if fail:
        script += f"echo {shlex.quote(fail)} >&2\nexit 1\n"
    (bin_dir / "systemctl").write_text(script)
    (bin_dir / "systemctl").chmod(0o755)
    return bin_dir, log


def test_user_units(tmp_path: Path) -> None:
    config, home = write_config(tmp_path / "conf"), tmp_path / "home"
    bin_dir, log = fake_systemctl(tmp_path)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": None, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = bootstrap(config, "--user", **env)
    assert result.exit_code == 0, result.stderr
    units = home / ".config" / "systemd" / "user"
    assert f"wrote     {units}/hhsync-sync@dc1.timer.d/hhsync.conf\n" in result.stdout
    assert log.read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable --now hhsync-sync@dc1.timer",
        "--user enable --now hhsync-sync@lab-2.timer",
    ]
    service = (units / "hhsync-sync@.service").read_text()
    settings = {line.partition("=")[0] for line in service.splitlines() if "=" in line}
    assert not settings & {"PrivateTmp", "CapabilityBoundingSet", "ProtectSystem"}
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    done = subprocess.run(
        [
            "systemd-analyze",
            "--user",
            "verify",
            "--man=no",
            "./hhsync-sync@dc1.service",
            "./hhsync-sync@dc1.timer",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=units,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_a_failing_systemctl_is_reported_with_its_own_message(tmp_path: Path) -> None:
    config = write_config(tmp_path / "conf")
    bin_dir, _ = fake_systemctl(tmp_path, fail="Failed to connect to bus: No medium found")
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": None, "PATH": str(bin_dir)}
    result = bootstrap(config, "--user", **env)
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "hhsync: error: systemctl --user daemon-reload failed with exit code 1: "
        "Failed to connect to bus: No medium found\n"
    )


def test_paths_with_spaces_and_shell_metacharacters_reach_hhsync_unchanged(tmp_path: Path) -> None:
    weird = tmp_path / "we ird $HOME;`x` 'q' \"d\" 100%i \\b"
    config, image = write_config(weird), tmp_path / "image"
    image.mkdir()
    result = bootstrap(config, "--unit-dir", str(image))
    assert result.exit_code == 0, result.stderr
    units = image / UNITS
    done = analyze("verify", "--man=no", "./hhsync-sync@dc1.service", cwd=units)
    assert (done.returncode, done.stderr) == (0, "")
    debug = dump(units, "hhsync-sync@dc1.service")
    line = re.search(r"Command Line: (.*)\n", debug)
    assert line
    # The dump shows the words before $$ becomes $, which happens at exec time.
    systemd_argv = [w.replace("$$", "$") for w in dump_words(line[1])]
    expected = [str(HHSYNC), "--config", str(config), "sync", "dc1"]
    assert systemd_argv == expected
    assert rendered_argv(config, "dc1") == expected
    service = (units / "hhsync-sync@.service").read_text()
    assert exec_start_argv(service, "dc1") == expected
    token = str(weird / "netbox.token").replace("%", "%%")
    assert f"LoadCredential=netbox.token:{token}\n" in service


def test_a_config_path_with_a_newline_is_refused(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "a\nExecStartPre=x"), tmp_path / "image"
    image.mkdir()
    result = bootstrap(config, "--unit-dir", str(image))
    assert result.exit_code == 2
    assert "contains a control character; rename it" in result.stderr
    assert tree(image) == set()


def test_a_fabric_name_too_long_for_a_unit_is_refused(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    config.write_text(
        config.read_text() + f'[fabrics.{"a" * 240}]\nsite = "long"\nsource = "file:wiring.yaml"\n'
    )
    result = bootstrap(config, "--unit-dir", str(image))
    assert result.exit_code == 2
    assert result.stderr == (
        'hhsync: error: fabric "aaaaaaaaaaaaaaaaaaaa…" is too long for a systemd unit name: '
        "rename it to at most 235 characters\n"
    )
    assert tree(image) == set()


def test_user_and_unit_dir_together_are_a_usage_error(tmp_path: Path) -> None:
    result = bootstrap(write_config(tmp_path), "--user", "--unit-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "--user and --unit-dir cannot be combined" in result.stderr


def test_files_in_tmp_are_warned_about(tmp_path: Path) -> None:
    config, image = write_config(tmp_path / "conf"), tmp_path / "image"
    image.mkdir()
    result = bootstrap(config, "--unit-dir", str(image))
    if str(tmp_path).startswith(("/tmp/", "/var/tmp/")):
        assert "PrivateTmp=yes gives it its own /tmp" in result.stderr
        assert str(config) in result.stderr
