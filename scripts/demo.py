#!/usr/bin/env python3
"""`make demo`: the whole job end to end on a throwaway NetBox and a local fake fabric API.

Starts a real NetBox 4.7.3 on loopback (set up on first use, cached in ~/.cache/hhsync-test),
serves examples/fabric/ from a local Kubernetes API that speaks the real protocol, runs
`hhsync check` and `hhsync sync demo` against both, prints the summary, the NetBox URL and its
login, and waits. Enter or Ctrl-C stops both and cleans up (`--no-wait` does that at once).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `tests.harness`

from tests.harness.fakekube import FakeKube  # noqa: E402
from tests.harness.netbox import NetBoxSetupError, ensure_netbox_env, start_netbox  # noqa: E402

WORK = ROOT / ".demo"


def hhsync(*args: str) -> int:
    command = [sys.executable, "-m", "hhsync", "--config", str(WORK / "config.toml"), *args]
    print(f"\n$ hhsync {' '.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-wait", action="store_true", help="clean up right after the sync")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    print("Setting up NetBox 4.7.3 (the first run installs it: about 8 minutes) ...", flush=True)
    try:
        env = ensure_netbox_env(log=lambda line: print(f"  {line}", flush=True))
        netbox = start_netbox(env, name="demo", redis_db=14)
    except NetBoxSetupError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    try:
        with FakeKube() as kube:
            kube.install_hedgehog_crds()
            for path in sorted((ROOT / "examples" / "fabric").glob("*.yaml")):
                kube.load_yaml(path)
            kube.write_kubeconfig(WORK / "kubeconfig")
            token = WORK / "netbox.token"
            token.write_text(netbox.token + "\n")
            token.chmod(0o600)
            (WORK / "config.toml").write_text(
                f'[netbox]\nurl = "{netbox.url}"\ntoken_file = "netbox.token"\n\n'
                f'[run]\nstate_dir = "{WORK / "state"}"\n\n'
                '[fabrics.demo]\nsite = "demo"\nkubeconfig = "kubeconfig"\n'
            )
            hhsync("check")
            code = hhsync("sync", "demo")
            print(
                f"\nNetBox: {netbox.url}/dcim/sites/  (login {netbox.username} / "
                f"{netbox.password})\nConfig: {WORK / 'config.toml'} (try: .venv/bin/hhsync "
                f"--config {WORK / 'config.toml'} sync demo --dry-run)",
                flush=True,
            )
            if not args.no_wait:
                try:
                    input("\nPress Enter (or Ctrl-C) to stop NetBox and the fabric API ... ")
                except (KeyboardInterrupt, EOFError):
                    print()
            return code
    finally:
        netbox.kill()
        netbox.stop()
        print("Stopped and cleaned up.")


if __name__ == "__main__":
    sys.exit(main())
