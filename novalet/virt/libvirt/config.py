"""Libvirt XML the driver writes and reads: guest domains and host capabilities.

Everything here is pure XML work (``xml.etree.ElementTree``); nothing talks to
libvirt, so it needs no connection and no libvirt-python.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Any

#: Namespace of the metadata element novalet writes into its domains.
METADATA_NS = "http://novalet.org/xmlns/libvirt/instance/1.0"
METADATA_PREFIX = "novalet"

ET.register_namespace(METADATA_PREFIX, METADATA_NS)


def domain_name(uuid: str) -> str:
    """The libvirt domain name of the guest of instance ``uuid``."""
    return "instance-%s" % uuid


@dataclasses.dataclass(frozen=True)
class GuestConfig:
    """What novalet puts in a domain definition."""

    uuid: str
    vcpus: int
    memory_mb: int
    virt_type: str
    root_gb: int = 0
    ephemeral_gb: int = 0
    #: The compute host that made the domain (``owns_guest``).
    host: str | None = None

    @property
    def name(self) -> str:
        """The domain name, ``instance-<uuid>``."""
        return domain_name(self.uuid)

    def to_element(self) -> ET.Element:
        """The ``<domain>`` element of this guest."""
        domain = ET.Element("domain", type=self.virt_type)
        ET.SubElement(domain, "name").text = self.name
        ET.SubElement(domain, "uuid").text = self.uuid
        metadata = ET.SubElement(domain, "metadata")
        metadata.append(self._metadata_element())
        ET.SubElement(domain, "memory", unit="KiB").text = str(self.memory_mb * 1024)
        ET.SubElement(domain, "vcpu").text = str(self.vcpus)
        os_el = ET.SubElement(domain, "os")
        ET.SubElement(os_el, "type").text = "hvm"
        return domain

    def to_xml(self) -> str:
        """The domain XML to hand to ``virConnect.defineXML``."""
        return ET.tostring(self.to_element(), encoding="unicode")

    def _metadata_element(self) -> ET.Element:
        inst = ET.Element(_ns("instance"))
        ET.SubElement(inst, _ns("root_gb")).text = str(self.root_gb)
        ET.SubElement(inst, _ns("ephemeral_gb")).text = str(self.ephemeral_gb)
        if self.host is not None:
            ET.SubElement(inst, _ns("host")).text = self.host
        return inst


def _ns(tag: str) -> str:
    return "{%s}%s" % (METADATA_NS, tag)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text
    return None


def parse_disk_gb(metadata_xml: str) -> int:
    """Disk (root_gb + ephemeral_gb) recorded in novalet's metadata element.

    Accepts the element with or without its namespace (libvirt's
    ``virDomain.metadata`` returns it without). Missing or unreadable values
    count as 0.
    """
    try:
        root = ET.fromstring(metadata_xml)
    except ET.ParseError:
        return 0
    total = 0
    for name in ("root_gb", "ephemeral_gb"):
        try:
            total += int(_child_text(root, name) or 0)
        except ValueError:
            pass
    return total


def parse_host(metadata_xml: str) -> str | None:
    """The host recorded in novalet's metadata element (None: none, e.g. a
    domain made before release 3)."""
    try:
        root = ET.fromstring(metadata_xml)
    except ET.ParseError:
        return None
    return _child_text(root, "host")


def parse_cpu_info(capabilities_xml: str, node_info: list[Any]) -> dict[str, Any]:
    """The host CPU described by libvirt capabilities XML, as a dict.

    ``node_info`` is ``virConnect.getInfo()`` (model, memory, cpus, mhz,
    nodes, sockets, cores, threads); it fills what the capabilities omit
    (the test driver gives no topology). Raises ``ET.ParseError`` on
    malformed XML.
    """
    root = ET.fromstring(capabilities_xml)
    cpu = root.find("./host/cpu")
    if cpu is None:
        cpu = ET.Element("cpu")
    topology = cpu.find("topology")
    if topology is not None:
        topo = {k: int(topology.get(k, "1")) for k in ("sockets", "cores", "threads")}
    else:
        topo = {"sockets": int(node_info[5]), "cores": int(node_info[6]),
                "threads": int(node_info[7])}
    features = {f.get("name", "") for f in cpu.findall("feature")}
    feature_list = cpu.find("features")
    if feature_list is not None:
        features.update(_local(f.tag) for f in feature_list)
    features.discard("")
    return {
        "arch": cpu.findtext("arch") or str(node_info[0]),
        "model": cpu.findtext("model") or str(node_info[0]),
        "vendor": cpu.findtext("vendor") or "unknown",
        "topology": topo,
        "features": sorted(features),
    }


def guest_domain_types(capabilities_xml: str) -> list[str]:
    """Domain types the host offers for ``hvm`` guests, in capabilities order."""
    root = ET.fromstring(capabilities_xml)
    types: list[str] = []
    for guest in root.findall("guest"):
        if guest.findtext("os_type") != "hvm":
            continue
        for dom in guest.findall("./arch/domain"):
            kind = dom.get("type")
            if kind and kind not in types:
                types.append(kind)
    return types
