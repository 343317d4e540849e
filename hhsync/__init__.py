"""hhsync: keep NetBox an exact, current mirror of Hedgehog Open Network Fabric."""

__version__ = "0.1.0"
