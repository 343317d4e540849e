"""VPC kinds -> VRFs, prefixes, VLANs and interface VLAN modes (built in the VPC issue)."""

from hhsync.desired import Builder


def build(b: Builder) -> None:
    del b
