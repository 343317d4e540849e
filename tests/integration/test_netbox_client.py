"""The NetBox edge against the real NetBox: tokens, retries for reads only, timeouts, errors."""

from __future__ import annotations

import pytest

from hhsync.config import NetboxConfig, Secret
from hhsync.deadline import unlimited
from hhsync.errors import NetboxError
from hhsync.netbox.client import NetBox
from tests.harness.netbox import NetBoxInstance
from tests.harness.proxy import FaultProxy


def client(url: str, token: str, timeout: float = 10) -> NetBox:
    return NetBox(NetboxConfig(url=url, timeout=timeout), Secret(token))


@pytest.mark.parametrize("which", ["token", "token_v1"])
def test_v1_and_v2_tokens(nb: NetBoxInstance, which: str) -> None:
    netbox = client(nb.url, getattr(nb, which))
    assert netbox.status(unlimited())["netbox-version"] == "4.7.3"
    created = netbox.create("dcim/sites/", [{"name": "s", "slug": "s"}], unlimited())
    assert [site["slug"] for site in created] == ["s"]


def test_reads_are_retried_on_503_with_retry_after(nb: NetBoxInstance) -> None:
    with FaultProxy(nb.url) as proxy:
        proxy.fault("/api/dcim/sites/", status=503, headers={"Retry-After": "1"}, times=1)
        netbox = client(proxy.url, nb.token)
        assert netbox.get_all("dcim/sites/", unlimited()) == []
        assert [(r.method, r.status) for r in proxy.log] == [("GET", 503), ("GET", 200)]


def test_writes_are_never_sent_twice(nb: NetBoxInstance) -> None:
    with FaultProxy(nb.url) as proxy:
        proxy.fault("/api/dcim/sites/", method="POST", status=502, times=1)
        netbox = client(proxy.url, nb.token)
        with pytest.raises(NetboxError) as e:
            netbox.create("dcim/sites/", [{"name": "s", "slug": "s"}], unlimited())
        assert str(e.value) == ("NetBox answered POST /api/dcim/sites/ with HTTP 502: Bad Gateway")
        assert [(r.method, r.status) for r in proxy.log] == [("POST", 502)]


def test_slow_answer_hits_the_timeout(nb: NetBoxInstance) -> None:
    with FaultProxy(nb.url) as proxy:
        proxy.fault("/api/dcim/sites/", delay=5, times=None)
        netbox = client(proxy.url, nb.token, timeout=0.5)
        with pytest.raises(NetboxError) as e:
            netbox.get_all("dcim/sites/", unlimited())
        assert (
            str(e.value) == f"NetBox at {proxy.url} did not answer GET /api/dcim/sites/ within 0.5s"
        )


def test_validation_errors_carry_netbox_own_words(nb: NetBoxInstance) -> None:
    netbox = client(nb.url, nb.token)
    with pytest.raises(NetboxError) as e:
        netbox.create("dcim/sites/", [{"name": "a", "slug": "a"}, {"slug": "b"}], unlimited())
    assert e.value.data == {
        "detail": "1 of 2 objects could not be created.",
        "errors": [{"index": 1, "errors": {"name": ["This field is required."]}}],
    }
    assert str(e.value) == (
        "NetBox answered POST /api/dcim/sites/ with HTTP 400: 1 of 2 objects could not be "
        'created. {"index": 1, "errors": {"name": ["This field is required."]}}'
    )
    assert netbox.get_all("dcim/sites/", unlimited()) == []  # NetBox rolled the whole chunk back
