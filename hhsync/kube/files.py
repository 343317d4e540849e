"""The file source: YAML files or directories of Hedgehog objects, served like a Kubernetes API.

Accepted: multi-document YAML, `kind: List` documents (`kubectl get -o yaml`), hhfab wiring files.
The files are the whole fabric, so every required kind counts as listed completely (no object of
a kind means none exists, and NetBox objects made from it are pruned); optional kinds (Agent,
Gateway) count only when the files hold some, since wiring files never carry Agent status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hhsync.deadline import Deadline
from hhsync.errors import SourceError
from hhsync.kube.kinds import BY_NAME, KINDS, Kind
from hhsync.kube.source import Obj

MAX_FILES = 10_000


class FileSource:
    def __init__(self, path: Path, namespace: str = "default") -> None:
        self.location = str(path)
        self.namespace = namespace
        self.objects: dict[str, list[Obj]] = {}
        self.versions: dict[str, str] = {}
        self._where: dict[tuple[str, str], str] = {}  # (kind, name) -> where it was defined
        for file in _yaml_files(path):
            for index, doc in enumerate(_documents(file), start=1):
                self._add(doc, f"{file}, document {index}")
        if not self.objects:  # never read a wrong path as "the fabric is empty, prune it all"
            raise SourceError(f"{path}: no Hedgehog objects in namespace {namespace}")

    def close(self) -> None:
        pass

    def served(self, deadline: Deadline) -> dict[str, str]:
        return {
            kind.kind: self.versions.get(kind.kind, f"{kind.group}/v1beta1")
            for kind in KINDS
            if not kind.optional or kind.kind in self.objects
        }

    def list(self, kind: Kind, api_version: str, deadline: Deadline) -> list[Obj]:
        return list(self.objects.get(kind.kind, ()))

    def _add(self, doc: Any, where: str) -> None:
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise SourceError(f"{where}: expected a Kubernetes object (a mapping)")
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
            items = doc.get("items")
            if not isinstance(items, list):
                raise SourceError(f"{where}: a {doc.get('kind')} without a list of items")
            for n, item in enumerate(items):
                self._add(item, f"{where}, item {n}")
            return
        kind, api_version = doc.get("kind"), doc.get("apiVersion")
        if not isinstance(kind, str) or not isinstance(api_version, str):
            raise SourceError(f"{where}: missing apiVersion or kind")
        known = BY_NAME.get(kind)
        if known is None or not api_version.startswith(known.group + "/"):
            return  # not a kind hhsync reads (Gateway of another group, Fabricator, ...)
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise SourceError(f"{where}: {kind} without metadata.name")
        if not metadata.get("namespace"):  # missing, null or "": the webhooks default it
            metadata["namespace"] = self.namespace
        if metadata["namespace"] != self.namespace:
            return
        seen = self.versions.setdefault(kind, api_version)
        if seen != api_version:
            raise SourceError(f"{where}: {kind} in {api_version}, but other files use {seen}")
        first = self._where.setdefault((kind, metadata["name"]), where)
        if first != where:
            raise SourceError(f"{where}: {kind} {metadata['name']} is already defined in {first}")
        self.objects.setdefault(kind, []).append(doc)


def _yaml_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SourceError(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())
    if len(files) > MAX_FILES:
        raise SourceError(f"{path}: more than {MAX_FILES} YAML files; point source at one fabric")
    return files


def _documents(file: Path) -> list[Any]:
    try:
        return list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
    except OSError as e:
        raise SourceError(f"{file}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise SourceError(f"{file}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SourceError(f"{file}{line}: invalid YAML: {problem}") from None
