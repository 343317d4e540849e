"""Secrets, TLS, file permissions, unit injection and ownership, against the real NetBox.

- The NetBox token (v2 `nbt_...` and legacy v1) and the fabric's Kubernetes bearer token never
  appear in anything hhsync produces: stdout and stderr of every command at every verbosity
  (`-vv` turns on urllib3's and the kubernetes client's debug logs), `--json`, error messages
  (connection refused, 403, TLS, a NetBox 500 whose body echoes the Authorization header, a
  token file with a second line), the metrics file, the rendered systemd units, and NetBox itself
  (sync state, journal, change log). Every artefact is grepped for the literal secrets.
- TLS is verified by default: a NetBox behind a certificate from a private CA is refused with a
  clear message until `ca_bundle` names the CA; `verify_tls = false` connects.
- A token file readable by others gives one warning, on stderr.
- Paths with shell and systemd metacharacters reach hhsync unchanged through the units.
- None of it edits an object hhsync does not own (tests/reliability/unowned.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.harness import proxy as proxy_module
from tests.harness.fakekube import LoopbackServer
from tests.harness.netbox import NetBoxInstance
from tests.harness.proxy import FaultProxy
from tests.harness.units import exec_start_argv
from tests.integration.conftest import Fabric
from tests.reliability import unowned
from tests.reliability.test_input_desired import build

KUBE_TOKEN = "kube-bearer-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c1e"
W = "wiring.githedgehog.com/v1beta1"
FABRIC = [
    {"apiVersion": W, "kind": "Switch", "metadata": {"name": "leaf-01"},
     "spec": {"role": "server-leaf", "ip": "172.30.0.11/21"}},
    {"apiVersion": W, "kind": "Server", "metadata": {"name": "server-01"}, "spec": {}},
    {"apiVersion": W, "kind": "Connection", "metadata": {"name": "server-01--unbundled--leaf-01"},
     "spec": {"unbundled": {"link": {"server": {"port": "server-01/eth0"},
                                     "switch": {"port": "leaf-01/E1/1"}}}}},
]  # fmt: skip


CREATED = len(build(FABRIC).items) - 1  # what a first sync creates (the site comes before)


def secrets(nb: NetBoxInstance) -> dict[str, str]:
    """Every secret string to grep for: whole tokens and the secret half of the v2 token."""
    return {
        "v2 token": nb.token,
        "v2 token secret": nb.token.split(".", 1)[1],
        "v1 token": nb.token_v1,
        "kube token": KUBE_TOKEN,
    }


def leaked(nb: NetBoxInstance, *texts: str) -> list[str]:
    return sorted({name for name, s in secrets(nb).items() for t in texts if s in t})


@pytest.fixture
def secured(fabric: Fabric) -> Fabric:
    """The fabric with a distinctive Kubernetes token and a few objects to sync."""
    fabric.kube.token = KUBE_TOKEN
    fabric.kube.write_kubeconfig(fabric.tmp / "kubeconfig")
    for o in FABRIC:
        fabric.kube.add(o)
    return fabric


def run(fabric: Fabric, *args: str) -> tuple[int, str]:
    """hhsync as its own process: exit code, and stdout + stderr together."""
    done = fabric.run(*args)
    return done.returncode, done.stdout + done.stderr


def netbox_text(nb: NetBoxInstance) -> str:
    """What NetBox stores about the runs: sites (sync state), journal entries, the change log."""
    session = nb.session()
    out = []
    for endpoint in ("dcim/sites", "extras/journal-entries", "core/object-changes"):
        answer = session.get(f"{nb.url}/api/{endpoint}/?limit=1000", timeout=60)
        answer.raise_for_status()
        out.append(answer.text)
    return "\n".join(out)


def test_tokens_never_appear_in_output_logs_json_metrics_units_or_netbox(
    secured: Fabric,
) -> None:
    fabric, nb = secured, secured.netbox
    metrics = fabric.tmp / "metrics" / "hhsync.prom"
    before = unowned.snapshot(nb)
    outputs: dict[str, str] = {}
    commands = [
        ("-vv", "check", "--json"),
        ("-vv", "sync", "dc1", "--force", "--metrics-file", str(metrics)),
        ("-vv", "sync", "dc1", "--force", "--full", "--json"),
        ("-vv", "sync", "dc1", "--dry-run"),
        ("-v", "sync", "--all", "--force"),  # children; the fast path from here on
        ("-vv", "status", "--json"),
        ("-q", "status"),
    ]
    for args in commands:
        code, text = run(fabric, *args)
        assert code == 0, text[-2000:]
        outputs[" ".join(args)] = text
    debug = outputs["-vv check --json"]  # -vv really turned the libraries' debug logs on:
    assert "urllib3.connectionpool: Starting new HTTP connection" in debug
    assert '"GET /apis/wiring.githedgehog.com/' in debug  # the Kubernetes API's requests
    (fabric.tmp / "token").write_text(nb.token_v1 + "\n")
    for args in (("-vv", "check", "--json"), ("-vv", "sync", "dc1", "--force")):
        code, text = run(fabric, *args)
        assert code == 0, text[-2000:]
        outputs["v1: " + " ".join(args)] = text
    units = fabric.tmp / "image"
    units.mkdir()
    code, text = run(fabric, "bootstrap-timers", "--dry-run", "--unit-dir", str(units))
    assert code == 0, text
    outputs["bootstrap-timers --dry-run"] = text
    outputs["metrics file"] = metrics.read_text()
    outputs["NetBox"] = netbox_text(nb)
    found = {what: leaked(nb, text) for what, text in outputs.items()}
    assert {what: names for what, names in found.items() if names} == {}
    assert unowned.changes(before, unowned.snapshot(nb)) == {}


ECHO = "Server Error while handling POST; request headers: Authorization: Bearer {token}"


def test_tokens_never_appear_in_errors(secured: Fabric) -> None:
    """NetBox (or a proxy in front of it) answers with an error body that quotes the request's
    Authorization header: a 500 with it in `detail`, a 500 with it elsewhere in the body, a 403
    (token revoked) quoting the token. hhsync fails each run, and neither its output nor what it
    records in NetBox (sync state, journal, change log) may carry the token."""
    fabric, nb = secured, secured.netbox
    code, text = run(fabric, "sync", "dc1", "--force")  # set up the schema and the site
    assert code == 0, text
    fabric.kube.remove("Connection", "server-01--unbundled--leaf-01")
    moved = {"server": {"port": "server-01/eth1"}, "switch": {"port": "leaf-01/E1/2"}}
    fabric.kube.add(
        {
            "apiVersion": W,
            "kind": "Connection",
            "metadata": {"name": "server-01--unbundled--leaf-01"},
            "spec": {"unbundled": {"link": moved}},
        }
    )  # the next runs must create interfaces: that is where the faults hit
    echo = ECHO.format(token=nb.token)
    faults = {
        "500 echoing the header in detail": (
            r"^/api/dcim/interfaces/$",
            "POST",
            500,
            {"detail": echo},
        ),
        "500 echoing the header in its body": (
            r"^/api/dcim/interfaces/$",
            "POST",
            500,
            {"error": "Server Error", "request": {"headers": echo}},
        ),
        "403 revoked": (r"^/api/(dcim|ipam)/", None, 403, {"detail": f"Invalid token {nb.token}"}),
    }
    outputs = {}
    for name, (path, method, status, body) in faults.items():
        fabric.proxy.fault(
            path, method=method, status=status, body=json.dumps(body).encode(), times=None
        )
        for args in (("-q", "sync", "dc1", "--force"), ("-vv", "sync", "dc1", "--force", "--json")):
            code, text = run(fabric, *args)
            assert code == 1, text[-2000:]
            outputs[f"{name}: {' '.join(args)}"] = text
        fabric.proxy.clear_faults()
    outputs["NetBox"] = netbox_text(nb)
    found = {what: leaked(nb, text) for what, text in outputs.items()}
    assert {what: names for what, names in found.items() if names} == {}


EXEC_TOKEN = "exec-plugin-token-4c1d9e7f2a6b8d0c3e5f7a9b"


def test_kubernetes_credentials_never_appear_in_errors(secured: Fabric) -> None:
    """The Kubernetes API (or a proxy in front of it) answers with a Status that quotes the
    request's bearer token: the kubeconfig's own token, then the token an exec credential plugin
    produced. The runs fail; their output (with -v tracebacks and -vv client logs) and what they
    record in NetBox carry neither token."""
    fabric, nb = secured, secured.netbox
    plugin = fabric.tmp / "plugin.py"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": EXEC_TOKEN}}  # fmt: skip
    plugin.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    outputs = {}
    for name, token in (("kubeconfig token", KUBE_TOKEN), ("exec plugin token", EXEC_TOKEN)):
        if token == EXEC_TOKEN:
            fabric.kube.token = EXEC_TOKEN
            fabric.kube.write_kubeconfig(
                fabric.tmp / "kubeconfig", exec_command=[sys.executable, str(plugin)]
            )
        fabric.kube.fault(
            "/switches$", status=500, message=f"admission denied for Bearer {token}", times=None
        )
        for args in (("-v", "sync", "dc1", "--force"), ("-vv", "sync", "dc1", "--force", "--json")):
            code, text = run(fabric, *args)
            assert code == 1, text[-2000:]
            assert "admission denied for ***" in text, text[-2000:]  # "Bearer <token>" is one
            outputs[f"{name}: {' '.join(args)}"] = text
        fabric.kube.clear_faults()
    outputs["NetBox"] = netbox_text(nb)
    texts = {what: [n for n, s in (("kube", KUBE_TOKEN), ("exec", EXEC_TOKEN)) if s in t]
             for what, t in outputs.items()}  # fmt: skip
    assert {what: names for what, names in texts.items() if names} == {}


def test_tokens_never_appear_when_netbox_is_unreachable_or_the_token_file_is_malformed(
    secured: Fabric,
) -> None:
    fabric, nb = secured, secured.netbox
    outputs = {}
    fabric.write_config()
    fabric.config.write_text(
        fabric.config.read_text().replace(fabric.proxy.url, "http://127.0.0.1:9")
    )
    for args in (("-vv", "check"), ("-vv", "sync", "dc1", "--force"), ("-v", "status")):
        code, text = run(fabric, *args)
        assert code == 1, text
        outputs["refused: " + " ".join(args)] = text
    assert "Connection refused" in outputs["refused: -vv check"]
    fabric.write_config()
    # An operator keeps a note under the token: the header would carry a line break.
    (fabric.tmp / "token").write_text(nb.token + "\n# rotated 2026-11, ask ops\n")
    for args in (("-vv", "check"), ("-vv", "sync", "dc1", "--force"), ("-v", "status")):
        code, text = run(fabric, *args)
        assert code in (1, 2), text
        outputs["two-line token file: " + " ".join(args)] = text
    found = {what: leaked(nb, text) for what, text in outputs.items()}
    assert {what: names for what, names in found.items() if names} == {}


def test_a_password_in_the_netbox_url_is_never_printed(secured: Fabric) -> None:
    """`url = "https://user:password@host"` is refused or redacted, never echoed in errors."""
    fabric = secured
    password = "pr0xy-Passw0rd-9f8e7d"
    fabric.write_config()
    fabric.config.write_text(
        fabric.config.read_text().replace("http://", f"http://ops:{password}@", 1)
    )
    outputs = {}
    for args in (("-vv", "check"), ("sync", "dc1", "--force"), ("status",)):
        fabric.proxy.fault(r"^/api/", status=502, content_type="text/html", times=None)
        code, text = run(fabric, *args)
        fabric.proxy.clear_faults()
        assert code == 1, text
        outputs[" ".join(args)] = text
    assert {what: text for what, text in outputs.items() if password in text} == {}


# -- TLS -------------------------------------------------------------------------------------------


class _TlsServer(LoopbackServer):
    def __init__(self, proxy: FaultProxy, context: ssl.SSLContext) -> None:
        super().__init__(proxy_module._Handler, context)
        self.proxy = proxy


class TlsProxy(FaultProxy):
    """The fault proxy, terminating TLS with a certificate for 127.0.0.1 from a private CA."""

    def __init__(self, upstream: str, ca: trustme.CA) -> None:
        super().__init__(upstream)
        self._server.server_close()  # the plain listener FaultProxy opened, never started
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server = _TlsServer(self, context)
        self.url = f"https://127.0.0.1:{self._server.port}"


@pytest.fixture
def tls(secured: Fabric) -> Iterator[tuple[Fabric, TlsProxy, Path]]:
    ca = trustme.CA()
    pem = secured.tmp / "private-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    with TlsProxy(secured.netbox.url, ca) as proxy:
        yield secured, proxy, pem


def tls_config(fabric: Fabric, proxy: TlsProxy, netbox: str = "") -> None:
    fabric.write_config(netbox=netbox)
    fabric.config.write_text(fabric.config.read_text().replace(fabric.proxy.url, proxy.url))


def test_tls_is_verified_by_default_and_a_private_ca_is_refused_clearly(
    tls: tuple[Fabric, TlsProxy, Path],
) -> None:
    fabric, proxy, _ = tls
    tls_config(fabric, proxy)
    result = fabric.cli("check", "--json")
    assert result.exit_code == 1
    [netbox] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "netbox"]
    done = fabric.run("-vv", "sync", "dc1")
    assert done.returncode == 1
    assert done.stdout == f"dc1: error: {netbox['detail']}\n"  # the same sentence
    assert leaked(fabric.netbox, done.stdout, done.stderr) == []
    assert [(r.method, r.path) for r in proxy.log] == []  # no request got through
    # The sentence, exactly (the ssl module's source line varies by build). The reason keeps
    # its closing parenthesis: "(_ssl.c:1006))".
    assert re.fullmatch(
        rf"TLS verification of NetBox at {re.escape(proxy.url)} failed \(\[SSL: "
        r"CERTIFICATE_VERIFY_FAILED\] certificate verify failed: unable to get local issuer "
        r"certificate \(_ssl\.c:\d+\)\): set \[netbox\] ca_bundle to the CA that signed its "
        r"certificate",
        netbox["detail"],
    ), netbox["detail"]


def test_tls_with_the_private_ca_as_ca_bundle_passes_check_and_syncs(
    tls: tuple[Fabric, TlsProxy, Path],
) -> None:
    fabric, proxy, pem = tls
    tls_config(fabric, proxy, f'ca_bundle = "{pem}"\n')
    result = fabric.cli("check")
    assert result.exit_code == 0, result.stdout + result.stderr
    result = fabric.cli("sync", "dc1")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"dc1: created {CREATED}, updated 0, deleted 0, unchanged 1, ")
    assert proxy.counts()["POST"] > 0  # all of it went through TLS


def test_tls_verification_turned_off_connects_and_is_warned_about(
    tls: tuple[Fabric, TlsProxy, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fabric, proxy, _ = tls
    tls_config(fabric, proxy, "verify_tls = false\n")
    done = fabric.run("check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^ok +netbox ", done.stdout, flags=re.M), done.stdout
    # It is warned about: by urllib3's InsecureRequestWarning (once per request, two lines
    # each, with Python source paths), not by hhsync itself.
    count = done.stderr.count("InsecureRequestWarning: Unverified HTTPS request")
    with capsys.disabled():
        print(f"\n[tls] verify_tls = false: {count} InsecureRequestWarning(s) on stderr")
    assert count >= 1 or "verify_tls" in done.stderr, done.stderr


# -- the token file's permissions ------------------------------------------------------------------


def test_a_world_readable_token_file_warns_once_on_stderr(secured: Fabric) -> None:
    fabric = secured
    token = fabric.tmp / "token"
    token.chmod(0o644)
    warning = (
        f"hhsync: warning: token file {token} is readable by group or others (mode 644); "
        f"run: chmod 600 {token}"
    )
    fabric.write_config(dc2='site = "dc2"\nkubeconfig = "kubeconfig"\nenabled = false\n')
    for args in (("check",), ("sync", "--all", "--force")):
        done = fabric.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert warning not in done.stdout
        assert done.stderr.count(warning) == 1, (args, done.stderr)
    done = fabric.run("-q", "check")
    assert warning not in done.stderr  # -q: errors only


# -- paths with metacharacters ---------------------------------------------------------------------

WEIRD = "we ird $HOME ;`id` $(id) 'q' \"d\" 100%i \\b"


def weird_config(root: Path, fabric: Fabric | None = None) -> Path:
    """A config, its token and kubeconfig under a directory named with metacharacters; the
    state directory and metrics file too."""
    where = root / WEIRD
    kube_dir = root / "kube;rm -rf ~ $(touch pwned) `touch pwned`"
    for d in (where, kube_dir):
        d.mkdir(parents=True)
    token = where / "tok en$x"
    token.write_text((fabric.netbox.token if fabric else "nbt_x.y") + "\n")
    token.chmod(0o600)
    kube = kube_dir / "kube 'config'"
    if fabric is not None:
        fabric.kube.write_kubeconfig(kube)
    else:
        kube.write_text("apiVersion: v1\nkind: Config\n")
    url = fabric.proxy.url if fabric else "https://netbox.example"
    config = where / "hh sync;$PATH.toml"
    config.write_text(
        f'[netbox]\nurl = "{url}"\ntoken_file = {json.dumps(str(token))}\n'
        f"[run]\nstate_dir = {json.dumps(str(where / 'state %n $x'))}\n"
        f"metrics_file = {json.dumps(str(where / 'metrics dir' / 'm;$(id).prom'))}\n"
        f'[fabrics.dc1]\nsite = "dc1"\nkubeconfig = {json.dumps(str(kube))}\n'
    )
    return config


def bootstrap(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hhsync", "--config", str(config), "bootstrap-timers", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dry_run_file(output: str, name: str) -> str:
    """One file's text from `bootstrap-timers --dry-run` output (indented under its path)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("/" + name))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("    ") and line:
            break
        body.append(line.removeprefix("    "))
    return "\n".join(body) + "\n"


def unit_words(line: str) -> list[str]:
    """The words of a unit-file setting, unquoted and with `%%` undone (systemd.syntax(7))."""
    import shlex

    return [w.replace("%%", "%") for w in shlex.split(line.split("=", 1)[1])]


def test_metacharacters_in_paths_cannot_inject_into_units(tmp_path: Path) -> None:
    config = weird_config(tmp_path)
    where = config.parent
    image = tmp_path / "image"
    image.mkdir()
    done = bootstrap(config, "--dry-run", "--unit-dir", str(image))
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()
    service = dry_run_file(done.stdout, "hhsync-sync@.service")
    argv = exec_start_argv(service, "dc1")
    assert argv[1:] == ["--config", str(config), "sync", "dc1"]
    [credential] = [line for line in service.splitlines() if line.startswith("LoadCredential=")]
    assert credential == "LoadCredential=netbox.token:" + str(where / "tok en$x").replace("%", "%%")
    [writable] = [line for line in service.splitlines() if line.startswith("ReadWritePaths=")]
    assert unit_words(writable) == [f"-{where / 'state %n $x'}", f"-{where / 'metrics dir'}"]
    settings = [line.split("=", 1)[0] for line in service.splitlines() if "=" in line]
    assert settings.count("ExecStart") == 1 and "ExecStartPre" not in settings
    # systemd's own parser accepts the written units.
    done = bootstrap(config, "--no-enable", "--unit-dir", str(image))
    assert done.returncode == 0, done.stderr
    units = image / "etc/systemd/system"
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "./hhsync-sync@dc1.service"],
        capture_output=True,
        text=True,
        cwd=units,
        check=False,
    )
    assert (verify.returncode, verify.stderr) == (0, "")
    assert not list(tmp_path.rglob("pwned"))


@pytest.mark.parametrize("key", ["state_dir", "metrics_file"])
def test_a_newline_in_a_rendered_path_is_refused_clearly(tmp_path: Path, key: str) -> None:
    config = weird_config(tmp_path)
    bad = tmp_path / "a\nExecStartPre=/bin/touch /tmp/pwned"
    line = f"{key} = {json.dumps(str(bad))}"
    text = re.sub(rf"^{key} = .*$", lambda _: line, config.read_text(), flags=re.M)
    config.write_text(text)
    image = tmp_path / "image"
    image.mkdir()
    done = bootstrap(config, "--unit-dir", str(image))
    assert done.returncode == 2
    shown = bad if key == "state_dir" else bad.parent
    assert (
        done.stderr
        == f"hhsync: error: path {str(shown)!r} contains a control character; rename it\n"
    )
    assert list(image.rglob("*")) == []


def test_a_newline_in_a_kubeconfig_path_never_reaches_a_unit(tmp_path: Path) -> None:
    """Kubeconfig paths are read by hhsync, never written into units: such a path renders."""
    config = weird_config(tmp_path)
    kube = tmp_path / "line\nExecStartPre=/bin/touch pwned" / "kubeconfig"
    kube.parent.mkdir(parents=True)
    kube.write_text("apiVersion: v1\nkind: Config\n")
    line = f"kubeconfig = {json.dumps(str(kube))}"
    config.write_text(re.sub(r"^kubeconfig = .*$", lambda _: line, config.read_text(), flags=re.M))
    image = tmp_path / "image"
    image.mkdir()
    done = bootstrap(config, "--dry-run", "--unit-dir", str(image))
    assert done.returncode == 0, done.stderr
    assert "ExecStartPre" not in done.stdout


def test_sync_all_with_a_metacharacter_config_path_runs_its_children_unchanged(
    secured: Fabric,
) -> None:
    """`sync --all` starts a child per fabric with the config path as one argv word."""
    config = weird_config(secured.tmp / "w", secured)
    done = subprocess.run(
        [sys.executable, "-m", "hhsync", "--config", str(config), "sync", "--all"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "HHSYNC_NETBOX_TOKEN"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"dc1: created {CREATED}, updated 0, deleted 0, unchanged 1, ")
    assert not list(secured.tmp.rglob("pwned")) and not Path("pwned").exists()
    metrics = (config.parent / "metrics dir" / "m;$(id).prom").read_text()
    assert 'hhsync_last_result{fabric="dc1"} 1' in metrics
    state = config.parent / "state %n $x"
    assert sorted(p.name for p in state.iterdir()) == ["dc1.lock"]


def test_unowned_snapshot_sees_edits_deletes_and_ignores_new_shared_objects(
    fabric: Fabric,
) -> None:
    """The helper itself: it must catch an edit and a delete of an unowned object."""
    api = fabric.api()
    site = api.dcim.sites.create(name="Elsewhere", slug="elsewhere")
    vrf = api.ipam.vrfs.create(name="manual")
    before = unowned.snapshot(fabric.netbox)
    site.description = "edited"
    site.save()
    vrf.delete()
    api.dcim.manufacturers.create(name="New", slug="new")
    changed = unowned.changes(before, unowned.snapshot(fabric.netbox))
    assert changed == {
        "changed": [f"dcim/sites #{site.id} Elsewhere: description, last_updated"],
        "deleted": [f"ipam/vrfs #{vrf.id} manual"],
    }
    assert shutil.which("systemd-analyze")  # the unit tests above need it (make test has it)
