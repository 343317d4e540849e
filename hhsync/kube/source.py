"""What every fabric source offers, and the inventory one discovery run produces."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hhsync.deadline import Deadline
from hhsync.errors import HhsyncError
from hhsync.kube.kinds import KINDS, Kind

Obj = dict[str, Any]


class Source(Protocol):
    location: str

    def served(self, deadline: Deadline) -> dict[str, str]:
        """apiVersion ("group/version") of each Hedgehog kind the source serves, by kind name."""
        ...

    def list(self, kind: Kind, api_version: str, deadline: Deadline) -> list[Obj]:
        """Every object of `kind`, completely, or raise SourceError."""
        ...

    def close(self) -> None: ...


class Absent(HhsyncError):
    """A kind that stopped being served between discovery and its list (HTTP 404)."""


@dataclass(frozen=True)
class Inventory:
    """All Hedgehog objects of one fabric; `served` says which kinds were listed at all."""

    objects: Mapping[str, tuple[Obj, ...]]
    served: Mapping[str, str] = field(default_factory=dict)

    def items(self, kind: str) -> tuple[Obj, ...]:
        return self.objects.get(kind, ())

    def complete(self, kind: str) -> bool:
        """True when `kind` was listed completely; absent kinds are never read as empty."""
        return kind in self.served

    @property
    def absent(self) -> list[str]:
        return [k.kind for k in KINDS if k.kind not in self.served]

    @property
    def missing(self) -> list[str]:
        """Absent kinds every supported fabric serves: their NetBox objects cannot be pruned."""
        return [k.kind for k in KINDS if not k.optional and k.kind not in self.served]


def discover(source: Source, deadline: Deadline, kinds: Iterable[Kind] = KINDS) -> Inventory:
    """List every served Hedgehog kind completely; raises SourceError on any failure."""
    deadline.enter("discovery (API discovery)")
    served = source.served(deadline)
    objects: dict[str, tuple[Obj, ...]] = {}
    for kind in kinds:
        if kind.kind in served:
            deadline.enter(f"discovery (listing {kind.plural})")
            try:
                objects[kind.kind] = tuple(source.list(kind, served[kind.kind], deadline))
            except Absent:
                continue  # its CRD went away after discovery: absent, never empty
    return Inventory(objects, {kind: served[kind] for kind in objects})
