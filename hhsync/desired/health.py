"""Agent status -> device status, versions and LLDP-confirmed cables (built in the health issue)."""

from hhsync.desired import Builder


def build(b: Builder) -> None:
    del b
