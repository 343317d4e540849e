"""The file source: which YAML it reads, which objects it keeps, and every error, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhsync.deadline import unlimited
from hhsync.errors import SourceError
from hhsync.kube.files import FileSource
from hhsync.kube.kinds import BY_NAME, KINDS
from hhsync.kube.source import discover
from tests.shared import hedgehog

WIRING = "wiring.githedgehog.com"
REQUIRED = {k.kind: f"{k.group}/v1beta1" for k in KINDS if not k.optional}


def sample(relative: str) -> Path:
    return hedgehog(f"samples/{relative}")


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def obj(kind: str, name: str, extra: str = "", version: str = "v1beta1") -> str:
    """One object as YAML; `extra` adds lines under metadata."""
    group = BY_NAME[kind].group if kind in BY_NAME else "example.com"
    return (
        f"apiVersion: {group}/{version}\nkind: {kind}\nmetadata:\n  name: {name}\n{extra}"
        "spec: {}\n"
    )


def items(*docs: str) -> str:
    """The YAML of a list's `items:` holding these objects."""
    return "".join("- " + doc.rstrip("\n").replace("\n", "\n  ") + "\n" for doc in docs)


def names(source: FileSource, kind: str) -> list[str]:
    return [o["metadata"]["name"] for o in source.list(BY_NAME[kind], "", unlimited())]


def counts(source: FileSource) -> dict[str, int]:
    return {kind: len(objects) for kind, objects in source.objects.items()}


def error(path: Path, tmp_path: Path, namespace: str = "default") -> str:
    with pytest.raises(SourceError) as info:
        FileSource(path, namespace)
    return str(info.value).replace(str(tmp_path), "TMP")


# -- what is read ----------------------------------------------------------------------------


def test_multi_document_file(tmp_path: Path) -> None:
    text = "---\n" + obj("Switch", "leaf-01") + "---\n---\n" + obj("Server", "server-01")
    text += "---\n# only a comment\n---\n" + obj("Switch", "leaf-02") + "---\n"
    source = FileSource(write(tmp_path, "wiring.yaml", text))
    assert counts(source) == {"Switch": 2, "Server": 1}
    assert names(source, "Switch") == ["leaf-01", "leaf-02"]
    assert source.list(BY_NAME["Server"], "", unlimited()) == [
        {
            "apiVersion": f"{WIRING}/v1beta1",
            "kind": "Server",
            "metadata": {"name": "server-01", "namespace": "default"},
            "spec": {},
        }
    ]
    assert source.location == str(tmp_path / "wiring.yaml")


def test_directory_tree_recursive_yaml_only_sorted(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", obj("Switch", "b"))
    write(tmp_path, "a/z.yml", obj("Switch", "a-z"))
    write(tmp_path, "a/sub/c.yaml", obj("Switch", "a-sub-c") + "---\n" + obj("Switch", "a-sub-c2"))
    write(tmp_path, "dir.yaml/inner.yaml", obj("Switch", "dir-inner"))  # a directory named .yaml
    write(tmp_path, "a/notes.txt", obj("Switch", "txt"))
    write(tmp_path, "a/switch.json", '{"kind": "Switch"}')
    write(tmp_path, "README.md", "not: [yaml\n")
    write(tmp_path, "a/sub/empty.yaml", "")
    source = FileSource(tmp_path)
    assert names(source, "Switch") == ["a-sub-c", "a-sub-c2", "a-z", "b", "dir-inner"]
    assert source.location == str(tmp_path)


def test_kubectl_get_list(tmp_path: Path) -> None:
    meta = "  resourceVersion: '1234'\n  uid: u\n"
    text = "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: ''\nitems:\n"
    text += items(obj("Switch", "leaf-01", meta), obj("Switch", "leaf-02", meta))
    source = FileSource(write(tmp_path, "get.yaml", text))
    assert names(source, "Switch") == ["leaf-01", "leaf-02"]
    assert source.objects["Switch"][0]["metadata"] == {
        "name": "leaf-01",
        "namespace": "default",
        "resourceVersion": "1234",
        "uid": "u",
    }


def test_typed_list(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConnectionList\nitems:\n"
    text += items(obj("Connection", "c-1"), obj("Connection", "c-2")) + "---\n" + obj("Switch", "s")
    source = FileSource(write(tmp_path, "list.yaml", text))
    assert counts(source) == {"Connection": 2, "Switch": 1}
    assert names(source, "Connection") == ["c-1", "c-2"]


def test_objects_of_unknown_kinds_are_ignored(tmp_path: Path) -> None:
    text = "\n---\n".join(
        [
            obj("Switch", "leaf-01"),
            obj("ServerProfile", "sp").replace("example.com", WIRING),
            obj("Catalog", "connections").replace("example.com", "agent.githedgehog.com"),
            "apiVersion: fabricator.githedgehog.com/v1beta1\nkind: Fabricator\n"
            "metadata:\n  name: default\n  namespace: fab\n",
            "apiVersion: example.com/v1\nkind: Gateway\nmetadata:\n  name: other-group\n",
            "apiVersion: v1\nkind: ConfigMap\n",  # no metadata at all: not read, no error
        ]
    )
    source = FileSource(write(tmp_path, "mixed.yaml", text))
    assert counts(source) == {"Switch": 1}
    assert source.versions == {"Switch": f"{WIRING}/v1beta1"}


def test_namespaces_other_ignored_missing_or_empty_defaulted(tmp_path: Path) -> None:
    text = "---\n".join(
        [
            obj("Switch", "no-namespace"),
            obj("Switch", "default", "  namespace: default\n"),
            obj("Switch", "null-namespace", "  namespace:\n"),
            obj("Switch", "empty-namespace", "  namespace: ''\n"),
            obj("Switch", "fab", "  namespace: fab\n"),
        ]
    )
    path = write(tmp_path, "ns.yaml", text)
    source = FileSource(path)
    assert names(source, "Switch") == [
        "no-namespace",
        "default",
        "null-namespace",
        "empty-namespace",
    ]
    assert {o["metadata"]["namespace"] for o in source.objects["Switch"]} == {"default"}
    fab = FileSource(path, "fab")
    assert names(fab, "Switch") == ["no-namespace", "null-namespace", "empty-namespace", "fab"]
    assert {o["metadata"]["namespace"] for o in fab.objects["Switch"]} == {"fab"}


# -- served() and discover() -----------------------------------------------------------------


def test_required_kinds_are_always_served(tmp_path: Path) -> None:
    source = FileSource(write(tmp_path, "one.yaml", obj("Switch", "leaf-01", version="v1beta2")))
    assert source.served(unlimited()) == {**REQUIRED, "Switch": f"{WIRING}/v1beta2"}
    inventory = discover(source, unlimited())
    assert inventory.absent == ["Agent", "Gateway"]
    assert inventory.missing == []
    assert (inventory.complete("VPC"), inventory.items("VPC")) == (True, ())
    assert [o["metadata"]["name"] for o in inventory.items("Switch")] == ["leaf-01"]
    assert inventory.complete("Agent") is False


def test_agent_and_gateway_are_served_only_when_present(tmp_path: Path) -> None:
    write(tmp_path, "agent.yaml", obj("Agent", "leaf-01"))
    write(tmp_path, "gw.yaml", obj("Gateway", "gw-1", "  namespace: fab\n", version="v1alpha1"))
    source = FileSource(tmp_path)
    assert source.served(unlimited()) == {**REQUIRED, "Agent": "agent.githedgehog.com/v1beta1"}
    write(tmp_path, "gw2.yaml", obj("Gateway", "gw-2", version="v1alpha1"))
    source = FileSource(tmp_path)
    assert source.served(unlimited()) == {
        **REQUIRED,
        "Agent": "agent.githedgehog.com/v1beta1",
        "Gateway": "gateway.githedgehog.com/v1alpha1",
    }
    inventory = discover(source, unlimited())
    assert inventory.absent == []
    assert [o["metadata"]["name"] for o in inventory.items("Gateway")] == ["gw-2"]


def test_list_returns_a_new_list(tmp_path: Path) -> None:
    source = FileSource(write(tmp_path, "one.yaml", obj("Switch", "leaf-01")))
    source.list(BY_NAME["Switch"], "", unlimited()).clear()
    assert names(source, "Switch") == ["leaf-01"]
    assert source.list(BY_NAME["VPC"], "", unlimited()) == []


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: v1\nkind: Switch\nmetadata:\n  labels: {a: 1\n  name: x\n",
            "TMP/f.yaml:5:7: invalid YAML: expected ',' or '}', but got ':'",
        ),
        (
            "apiVersion: v1\n  kind: Switch\n",
            "TMP/f.yaml:2:7: invalid YAML: mapping values are not allowed here",
        ),
        (
            "\tkind: Switch\n",
            "TMP/f.yaml:1:1: invalid YAML: found character '\\t' that cannot start any token",
        ),
        (
            obj("Switch", "a") + "---\n- a\n- b\n",
            "TMP/f.yaml, document 2: expected a Kubernetes object (a mapping)",
        ),
        ("just text\n", "TMP/f.yaml, document 1: expected a Kubernetes object (a mapping)"),
        (
            "kind: Switch\nmetadata: {name: a}\n",
            "TMP/f.yaml, document 1: missing apiVersion or kind",
        ),
        (
            f"apiVersion: {WIRING}/v1beta1\nmetadata: {{name: a}}\n",
            "TMP/f.yaml, document 1: missing apiVersion or kind",
        ),
        (
            f"apiVersion: {WIRING}/v1beta1\nkind: Switch\nspec: {{}}\n",
            "TMP/f.yaml, document 1: Switch without metadata.name",
        ),
        (
            f"apiVersion: {WIRING}/v1beta1\nkind: Switch\nmetadata: {{name: 7}}\n",
            "TMP/f.yaml, document 1: Switch without metadata.name",
        ),
        (
            "apiVersion: v1\nkind: List\nitems:\n"
            + items(
                obj("Switch", "a"), f"apiVersion: {WIRING}/v1beta1\nkind: Server\nmetadata: {{}}"
            ),
            "TMP/f.yaml, document 1, item 1: Server without metadata.name",
        ),
        (
            "apiVersion: v1\nkind: SwitchList\n",
            "TMP/f.yaml, document 1: a SwitchList without a list of items",
        ),
        (
            obj("Switch", "leaf-01") + "---\n" + obj("Switch", "leaf-01"),
            "TMP/f.yaml, document 2: Switch leaf-01 is already defined in TMP/f.yaml, document 1",
        ),
    ],
    ids=[
        "yaml-flow",
        "yaml-indent",
        "yaml-tab",
        "not-a-mapping",
        "scalar",
        "no-apiversion",
        "no-kind",
        "no-name",
        "name-not-text",
        "list-item",
        "list-without-items",
        "duplicate",
    ],
)
def test_error_messages(tmp_path: Path, text: str, message: str) -> None:
    assert error(write(tmp_path, "f.yaml", text), tmp_path) == message


def test_one_kind_in_two_api_versions(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", obj("Switch", "leaf-01"))
    write(
        tmp_path,
        "b.yaml",
        obj("Server", "server-01") + "---\n" + obj("Switch", "leaf-02", version="v1beta2"),
    )
    assert error(tmp_path, tmp_path) == (
        f"TMP/b.yaml, document 2: Switch in {WIRING}/v1beta2, but other files use {WIRING}/v1beta1"
    )


def test_the_same_object_in_two_files(tmp_path: Path) -> None:
    write(tmp_path, "backup/wiring.yaml", obj("Switch", "leaf-01"))
    write(tmp_path, "wiring.yaml", obj("Server", "leaf-01") + "---\n" + obj("Switch", "leaf-01"))
    assert error(tmp_path, tmp_path) == (
        "TMP/wiring.yaml, document 2: Switch leaf-01 is already defined in "
        "TMP/backup/wiring.yaml, document 1"
    )


def test_other_namespace_versions_and_names_do_not_conflict(tmp_path: Path) -> None:
    text = obj("Switch", "leaf-01") + "---\n"
    text += obj("Switch", "leaf-01", "  namespace: fab\n", version="v1alpha2")
    assert names(FileSource(write(tmp_path, "f.yaml", text)), "Switch") == ["leaf-01"]


def test_missing_path(tmp_path: Path) -> None:
    assert error(tmp_path / "nope", tmp_path) == "TMP/nope: no such file or directory"


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: Switch\ndescription: caf\xe9\n")
    assert error(path, tmp_path) == "TMP/latin1.yaml: not UTF-8 text"


# -- the real samples ------------------------------------------------------------------------


def test_sample_mesh_vlab() -> None:
    source = FileSource(sample("wiring/mesh-vlab.derived-from-agents.yaml"))
    assert counts(source) == {
        "Switch": 3,
        "SwitchGroup": 1,
        "Server": 6,
        "Connection": 12,
        "VLANNamespace": 1,
        "IPv4Namespace": 1,
        "VPC": 3,
        "VPCAttachment": 6,
        "VPCPeering": 1,
        "External": 1,
        "ExternalAttachment": 1,
        "ExternalPeering": 1,
    }
    assert source.served(unlimited()) == REQUIRED


def test_sample_spine_leaf_skips_the_gateway_in_namespace_fab() -> None:
    path = sample("wiring/spine-leaf-docs.yaml")
    source = FileSource(path)
    assert counts(source) == {
        "Switch": 6,
        "SwitchGroup": 1,
        "Connection": 10,
        "VLANNamespace": 1,
        "IPv4Namespace": 1,
    }
    assert source.served(unlimited()) == REQUIRED  # no Gateway: it is in namespace fab
    fab = FileSource(path, "fab")  # the objects without a namespace land in "fab" too
    assert counts(fab) == {**counts(source), "Gateway": 1}
