"""The Hedgehog kinds hhsync reads. Versions are not listed here: they come from API discovery."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    group: str
    kind: str
    plural: str
    # Not needed to prune NetBox, and lawfully absent: gateways came in v0.113, and file sources
    # rarely carry Agents. Without them hhsync only leaves device health alone.
    optional: bool = False


WIRING = "wiring.githedgehog.com"
VPC = "vpc.githedgehog.com"
AGENT = "agent.githedgehog.com"
GATEWAY = "gateway.githedgehog.com"

KINDS: tuple[Kind, ...] = (
    Kind(WIRING, "SwitchProfile", "switchprofiles"),
    Kind(WIRING, "Switch", "switches"),
    Kind(WIRING, "SwitchGroup", "switchgroups"),
    Kind(WIRING, "Server", "servers"),
    Kind(WIRING, "Connection", "connections"),
    Kind(WIRING, "VLANNamespace", "vlannamespaces"),
    Kind(VPC, "IPv4Namespace", "ipv4namespaces"),
    Kind(VPC, "VPC", "vpcs"),
    Kind(VPC, "VPCAttachment", "vpcattachments"),
    Kind(VPC, "VPCPeering", "vpcpeerings"),
    Kind(VPC, "External", "externals"),
    Kind(VPC, "ExternalAttachment", "externalattachments"),
    Kind(VPC, "ExternalPeering", "externalpeerings"),
    Kind(AGENT, "Agent", "agents", optional=True),
    Kind(GATEWAY, "Gateway", "gateways", optional=True),
)

BY_NAME = {k.kind: k for k in KINDS}
GROUPS = tuple(dict.fromkeys(k.group for k in KINDS))
