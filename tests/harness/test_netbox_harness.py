"""Integration tests of the NetBox test harness itself, against the real instance."""

from __future__ import annotations

import requests

from tests.harness.netbox import NetBoxInstance


def _status(session: requests.Session, nb: NetBoxInstance) -> dict[str, object]:
    response = session.get(f"{nb.url}/api/status/", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _create_site(session: requests.Session, nb: NetBoxInstance, name: str) -> requests.Response:
    return session.post(f"{nb.url}/api/dcim/sites/", json={"name": name, "slug": name}, timeout=30)


def _site_names(session: requests.Session, nb: NetBoxInstance) -> list[str]:
    response = session.get(f"{nb.url}/api/dcim/sites/", timeout=30)
    assert response.status_code == 200, response.text
    return [site["name"] for site in response.json()["results"]]


def test_status_with_v2_and_v1_tokens(nb: NetBoxInstance) -> None:
    for token in (nb.token, nb.token_v1):
        assert str(_status(nb.session(token), nb)["netbox-version"]).startswith("4.7.")


def test_readonly_token_reads_but_cannot_write(nb: NetBoxInstance) -> None:
    assert _create_site(nb.session(), nb, "by-admin").status_code == 201
    readonly = nb.session(nb.readonly_token)

    response = _create_site(readonly, nb, "by-readonly")

    assert response.status_code == 403, response.text
    assert _site_names(readonly, nb) == ["by-admin"]


def test_reset_removes_data_and_the_api_works_right_after(nb: NetBoxInstance) -> None:
    session = nb.session()
    assert _create_site(session, nb, "before-reset").status_code == 201

    nb.reset()

    # Enough requests to reach every worker thread's (now dead) database connection.
    for _ in range(3 * nb.workers * 4):
        assert _site_names(session, nb) == []
    assert _create_site(session, nb, "after-reset").status_code == 201


def test_kill_then_start_comes_back_on_the_same_port_with_data(nb: NetBoxInstance) -> None:
    assert _create_site(nb.session(), nb, "survivor").status_code == 201
    url, pid = nb.url, nb.pid

    nb.kill()
    running_after_kill = nb.running
    nb.start()

    assert not running_after_kill
    assert nb.running and nb.pid != pid and nb.url == url
    assert _site_names(nb.session(), nb) == ["survivor"]
