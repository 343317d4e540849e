"""The rendered service's ExecStart, run as systemd would run it, syncs a fabric into NetBox."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.integration.conftest import Fabric
from tests.integration.test_bootstrap_timers import rendered_argv
from tests.integration.test_sync_changes import example
from tests.integration.test_sync_wiring import serve


def test_rendered_exec_start_syncs_the_fabric_with_a_credential(fabric: Fabric) -> None:
    serve(fabric, example())
    config = fabric.config.read_text().replace('token_file = "token"', 'token_file = "absent"')
    fabric.config.write_text(config.replace(f'state_dir = "{fabric.tmp / "state"}"\n', ""))
    credentials = fabric.tmp / "credentials"  # what LoadCredential= gives the service
    credentials.mkdir()
    (credentials / "netbox.token").write_text(fabric.netbox.token)
    state = fabric.tmp / "var-lib-hhsync"
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(credentials), "STATE_DIRECTORY": str(state)}
    env.pop("HHSYNC_NETBOX_TOKEN", None)
    argv = rendered_argv(fabric.config, "dc1")
    assert argv[-4:] == ["--config", str(fabric.config), "sync", "dc1"]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("dc1: created 103, updated 0, deleted 0, unchanged 1,")
    assert (state / "dc1.lock").exists()
    status = subprocess.run(
        [*argv[: argv.index("sync")], "status", "--json", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["fabrics"][0]["state"] == "in_sync"
    assert not Path(fabric.tmp / "absent").exists()
