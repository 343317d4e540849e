"""An optional Hedgehog kind the fabric's API stops serving changes nothing that was built from
it, however indirectly: found when a fabric's Gateway CRD went away and the next run deleted the
gateway's port, the IP on it and the cable to it (the device itself was kept)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Fabric
from tests.integration.test_sync_changes import example
from tests.integration.test_sync_health import agent_fabric, set_status, status
from tests.integration.test_sync_wiring import serve, sync_ok
from tests.reliability import scenario as sc

GATEWAY: dict[str, Any] = {
    "apiVersion": "gateway.githedgehog.com/v1alpha1",
    "kind": "Gateway",
    "metadata": {"name": "gw-1", "namespace": "default"},
    "spec": {
        "asn": 65534,
        "protocolIP": "172.30.8.3/32",
        "vtepIP": "172.30.12.3/32",
        "interfaces": {"enp2s1": {"ips": ["172.30.128.1/31"]}},
        "neighbors": [{"asn": 65101, "ip": "172.30.128.0", "source": "enp2s1"}],
    },
}
GATEWAY_LINK: dict[str, Any] = {
    "apiVersion": "wiring.githedgehog.com/v1beta1",
    "kind": "Connection",
    "metadata": {"name": "spine-01--gateway--gw-1", "namespace": "default"},
    "spec": {
        "gateway": {
            "links": [
                {
                    "switch": {"port": "spine-01/E1/5", "ip": "172.30.128.0/31"},
                    "gateway": {"port": "gw-1/enp2s1", "ip": "172.30.128.1/31"},
                }
            ]
        }
    },
}


def gateway_fabric(fabric: Fabric) -> None:
    serve(fabric, [*example(), GATEWAY, GATEWAY_LINK])


def agent_fabric_with_status(fabric: Fabric) -> None:
    objs, agents = agent_fabric()
    serve(fabric, objs + agents)
    for agent in agents:
        set_status(fabric, agent, status(agent, objs))


OPTIONAL = {  # kind: (group, plural, a fabric using it)
    "Gateway": ("gateway.githedgehog.com", "gateways", gateway_fabric),
    "Agent": ("agent.githedgehog.com", "agents", agent_fabric_with_status),
}


@pytest.mark.parametrize("kind", sorted(OPTIONAL))
def test_a_kind_no_longer_served_changes_nothing_built_from_it(fabric: Fabric, kind: str) -> None:
    group, plural, build = OPTIONAL[kind]
    build(fabric)
    sync_ok(fabric)
    before = sc.snapshot(fabric.netbox, "dc1")
    fabric.kube.remove_crd(group, plural)
    fabric.proxy.reset_log()
    out = sync_ok(fabric)  # an optional kind: its absence is not an error
    assert ", updated 0, deleted 0, " in out
    assert sc.diff(before, sc.snapshot(fabric.netbox, "dc1")) == []
    assert [w.method for w in fabric.proxy.writes()] == ["PATCH"]  # the sync state only
