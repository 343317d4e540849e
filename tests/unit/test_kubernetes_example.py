"""examples/kubernetes: valid manifests, and a config that loads where the CronJob mounts it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from hhsync.config import load_config, load_token

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
# The oldest Kubernetes still in upstream support when this was written, and the newest schema
# kubernetes-validate ships.
VERSIONS = ("1.32", "latest")


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate as kv  # test-only dependency, ships the schemas (no network)
    except ImportError:
        message = "kubernetes-validate is not installed: pip install -e '.[test]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return kv


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == kind]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly(version: str) -> None:
    kv = kubernetes_validate()
    target = kv.latest_version() if version == "latest" else version
    kinds = []
    for doc in documents():
        kv.validate(doc, target, strict=True)  # raises ValidationError with the path at fault
        kinds.append(doc["kind"])
    assert sorted(kinds) == ["ConfigMap", "CronJob", "Secret", "Secret"]


def test_the_cronjob_keeps_its_promises() -> None:
    [cron] = by_kind("CronJob")
    spec = cron["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("*/5 * * * *", "Forbid")
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] < 300  # never still running at the next schedule
    pod = job["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["command"][-2:] == ["sync", "--all"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/var/lib/hhsync"}


def test_the_config_loads_from_the_mounted_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lay out the pod's files under tmp_path as the CronJob mounts them, then load them."""
    [cron] = by_kind("CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    sources = {d["metadata"]["name"]: d for d in by_kind("ConfigMap") + by_kind("Secret")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        ref = volume.get("configMap", {}).get("name") or volume.get("secret", {}).get("secretName")
        if ref is None:
            continue  # an emptyDir
        source = sources[ref]
        directory = tmp_path / mount["mountPath"].lstrip("/")
        directory.mkdir(parents=True)
        for key, value in (source.get("data") or source["stringData"]).items():
            (directory / key).write_text(value)

    def inside(path: str) -> Path:
        return tmp_path / path.lstrip("/")

    config_file = inside(container["command"][container["command"].index("--config") + 1])
    config_file.write_text(config_file.read_text().replace('"/etc/', f'"{tmp_path}/etc/'))
    env = {e["name"]: e["value"] for e in container["env"]}
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(inside(env["CREDENTIALS_DIRECTORY"])))
    monkeypatch.delenv("HHSYNC_NETBOX_TOKEN", raising=False)

    config = load_config(config_file)
    assert list(config.fabrics) == ["dc1"]
    assert config.warnings == ()
    assert load_token(config.netbox, config.path) == "REPLACE-WITH-THE-NETBOX-API-TOKEN"
