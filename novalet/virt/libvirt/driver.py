"""A virt driver on libvirt-python: one node, the host libvirt connects to.

The connection (``[libvirt] connection_uri``) opens on first use. When it is
lost, the call that notices raises ``HypervisorUnavailable`` and drops it; the
next call opens a new one. Usage comes from the running domains, not from the
host's free memory (libvirt's test host never lowers it).
"""

from __future__ import annotations

import collections.abc
import contextlib
import json
import os
import threading
import time
from typing import Any

import libvirt
from oslo_log import log as logging

from novalet import exception
from novalet.virt import driver
from novalet.virt.libvirt import config

LOG = logging.getLogger(__name__)

_GiB = 1024 ** 3

#: Seconds between two looks at a guest asked to shut down.
_SHUTDOWN_POLL = 0.5

#: libvirt error codes and domains that mean the connection itself is gone.
_CONNECTION_ERROR_CODES = frozenset({
    libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_SYSTEM_ERROR,
})
_CONNECTION_ERROR_DOMAINS = frozenset({libvirt.VIR_FROM_REMOTE, libvirt.VIR_FROM_RPC})

_error_handler_lock = threading.Lock()
_error_handler_registered = False


def _silence_libvirt_stderr() -> None:
    """Stop libvirt printing every error to stderr (errors still raise)."""
    global _error_handler_registered
    with _error_handler_lock:
        if not _error_handler_registered:
            libvirt.registerErrorHandler(lambda *args: None, None)
            _error_handler_registered = True


class LibvirtDriver(driver.ComputeDriver):
    """Drives the host behind ``[libvirt] connection_uri`` as a single node."""

    def __init__(self, conf: Any) -> None:
        self._conf = conf
        self.uri: str = conf.libvirt.connection_uri
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()
        #: (libvirt's hostname, the node name reported for it): the node
        #: keeps its first name when the host is renamed (a restart keeps
        #: it too when the manager finds the old record: keep_node_name).
        self._node: tuple[str, str] | None = None

    # -- connection --------------------------------------------------------

    def _connection(self) -> libvirt.virConnect:
        """The open connection, opening it if needed.

        Raises ``HypervisorUnavailable`` if it cannot be opened, or if the
        cached one is no longer alive (it is dropped: the next call reopens).
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                _silence_libvirt_stderr()
                try:
                    conn = libvirt.open(self.uri)
                except libvirt.libvirtError as e:
                    raise exception.HypervisorUnavailable(
                        uri=self.uri, reason="cannot connect: %s" % e)
                self._conn = conn
                return conn
        if not self._is_alive(conn):
            self._drop(conn)
            raise exception.HypervisorUnavailable(
                uri=self.uri, reason="connection lost (not alive); reconnecting on next call")
        return conn

    @staticmethod
    def _is_alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    def _drop(self, conn: libvirt.virConnect) -> None:
        """Forget ``conn`` (if still current) and close it, ignoring errors."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    @contextlib.contextmanager
    def _calling(self, action: str, *, reading: bool
                 ) -> collections.abc.Iterator[libvirt.virConnect]:
        """Yield the connection; turn libvirt errors into novalet ones.

        A lost connection raises ``HypervisorUnavailable`` and is dropped.
        Any other libvirt error raises ``HypervisorUnavailable`` when
        ``reading`` (the host cannot be read) and ``VirtDriverError``
        otherwise.
        """
        conn = self._connection()
        try:
            yield conn
        except libvirt.libvirtError as e:
            if (e.get_error_code() in _CONNECTION_ERROR_CODES
                    or e.get_error_domain() in _CONNECTION_ERROR_DOMAINS
                    or not self._is_alive(conn)):
                self._drop(conn)
                raise exception.HypervisorUnavailable(
                    uri=self.uri, reason="connection lost during %s: %s" % (action, e))
            if reading:
                raise exception.HypervisorUnavailable(
                    uri=self.uri, reason="%s failed: %s" % (action, e))
            raise exception.VirtDriverError(reason="%s failed: %s" % (action, e))

    def cleanup(self) -> None:
        """Close the connection, if open; a later call would reopen it."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    # -- reading -----------------------------------------------------------

    def get_available_nodes(self) -> list[str]:
        """``[node name]`` of the libvirt host: its hostname when first
        seen, kept when the host is renamed. Raises ``HypervisorUnavailable``."""
        with self._calling("getHostname", reading=True) as conn:
            return [self._node_name(conn.getHostname())]

    def _node_name(self, hostname: str) -> str:
        with self._lock:
            if self._node is None:
                self._node = (hostname, hostname)
            elif self._node[0] != hostname:
                LOG.warning("libvirt host %s now calls itself %s: it stays "
                            "node %s", self._node[0], hostname, self._node[1])
                self._node = (hostname, self._node[1])
            return self._node[1]

    def keep_node_name(self, reported: str, recorded: str) -> bool:
        """Report this host as ``recorded`` from now on (see
        ``ComputeDriver.keep_node_name``); True if ``reported`` is its
        current node name."""
        with self._lock:
            if self._node is None or self._node[1] != reported:
                return False
            self._node = (self._node[0], recorded)
            return True

    def _check_node(self, conn: libvirt.virConnect, nodename: str) -> None:
        current = self._node_name(conn.getHostname())
        if nodename != current:
            raise exception.VirtDriverError(
                reason="node %r is not managed here (libvirt host is %r)"
                % (nodename, current))

    def get_metrics(self, nodename: str) -> list[dict[str, Any]]:
        """The host CPU frequency (MHz) from ``getInfo()``."""
        with self._calling("reading metrics", reading=True) as conn:
            self._check_node(conn, nodename)
            info = conn.getInfo()
        return [{"name": "cpu.frequency", "value": float(info[3]),
                 "source": "libvirt"}]

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        """The resource view of the host (see ``ComputeDriver``).

        CPUs and memory come from ``getInfo()``, their use from the running
        domains, the disk from the filesystem of ``[DEFAULT] instances_path``
        (created if missing). Raises ``HypervisorUnavailable`` when libvirt
        cannot be read, ``VirtDriverError`` for a node that is not this host
        or an unreadable instances_path.
        """
        with self._calling("reading resources", reading=True) as conn:
            self._check_node(conn, nodename)
            info = conn.getInfo()
            caps = conn.getCapabilities()
            hv_type = conn.getType()
            hv_version = conn.getVersion()
            guests = self._running_guests(conn, with_disk=False)
        disk = self._instances_disk()
        return {
            "vcpus": int(info[2]),
            "memory_mb": int(info[1]),
            "local_gb": disk["total_gb"],
            "vcpus_used": sum(g["vcpus"] for g in guests),
            "memory_mb_used": sum(g["memory_mb"] for g in guests),
            "local_gb_used": disk["used_gb"],
            "hypervisor_type": hv_type,
            "hypervisor_version": int(hv_version),
            "hypervisor_hostname": nodename,
            "cpu_info": json.dumps(config.parse_cpu_info(caps, info), sort_keys=True),
            "disk_available_least": disk["free_gb"],
        }

    def _instances_disk(self) -> dict[str, int]:
        path = self._conf.instances_path
        try:
            os.makedirs(path, exist_ok=True)
            st = os.statvfs(path)
        except OSError as e:
            raise exception.VirtDriverError(
                reason="cannot read disk of instances_path %s: %s" % (path, e))
        total = st.f_blocks * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        return {"total_gb": total // _GiB, "used_gb": used // _GiB,
                "free_gb": (st.f_bavail * st.f_frsize) // _GiB}

    def list_guests(self, nodename: str) -> list[driver.GuestUsage]:
        """The running domains, with the disk novalet recorded at spawn (else 0).

        Raises ``HypervisorUnavailable`` when libvirt cannot be read,
        ``VirtDriverError`` for a node that is not this host.
        """
        with self._calling("listing guests", reading=True) as conn:
            self._check_node(conn, nodename)
            return self._running_guests(conn, with_disk=True)

    def _running_guests(self, conn: libvirt.virConnect, *, with_disk: bool
                        ) -> list[driver.GuestUsage]:
        guests: list[driver.GuestUsage] = []
        flags = libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE
        for dom in conn.listAllDomains(flags):
            try:
                # info(): state, max memory KiB, memory KiB, vcpus, cpu time
                _state, _max_kib, mem_kib, vcpus, _cpu_time = dom.info()
                uuid = dom.UUIDString()
                disk_gb = self._recorded_disk_gb(dom) if with_disk else 0
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # stopped and undefined since the listing
                raise
            guests.append(driver.GuestUsage(uuid=uuid, vcpus=int(vcpus),
                                            memory_mb=int(mem_kib) // 1024,
                                            disk_gb=disk_gb))
        return guests

    @staticmethod
    def _recorded_disk_gb(dom: libvirt.virDomain) -> int:
        try:
            xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, config.METADATA_NS)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return 0  # not spawned by novalet
            raise
        return config.parse_disk_gb(xml)

    # -- changing ----------------------------------------------------------

    def _virt_type(self, conn: libvirt.virConnect) -> str:
        configured: str | None = self._conf.libvirt.virt_type
        if configured:
            return configured
        offered = config.guest_domain_types(conn.getCapabilities())
        for preferred in ("test", "kvm"):
            if preferred in offered:
                return preferred
        if offered:
            return offered[0]
        return "test" if self.uri.startswith("test:") else "kvm"

    def spawn(self, instance: Any) -> None:
        """Define and start domain ``instance-<uuid>`` for ``instance``.

        The domain type is ``[libvirt] virt_type``, else the best one the
        host offers (``test`` on libvirt's test host, ``kvm`` where present).
        Raises ``HypervisorUnavailable`` when the connection is lost and
        ``VirtDriverError`` when libvirt refuses (the half-made domain is
        undefined).
        """
        with self._calling("spawning %s" % instance.uuid, reading=False) as conn:
            guest = config.GuestConfig(
                uuid=instance.uuid, vcpus=int(instance.vcpus),
                memory_mb=int(instance.memory_mb), virt_type=self._virt_type(conn),
                root_gb=int(instance.root_gb or 0),
                ephemeral_gb=int(instance.ephemeral_gb or 0),
                host=self._conf.host)
            dom = conn.defineXML(guest.to_xml())
            try:
                dom.create()
            except libvirt.libvirtError:
                with contextlib.suppress(libvirt.libvirtError):
                    dom.undefine()
                raise

    def owns_guest(self, uuid: str) -> bool:
        """True when there is no domain of ``uuid``, or it carries novalet's
        metadata (and, if it records one, this host); False for any other
        domain: novalet did not make it and will not destroy it."""
        with self._calling("reading %s" % uuid, reading=True) as conn:
            try:
                dom = conn.lookupByUUIDString(uuid)
                xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                                   config.METADATA_NS)
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return True
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                    return False
                raise
        recorded = config.parse_host(xml)
        return recorded is None or recorded == self._conf.host

    def destroy(self, instance: Any, clean_shutdown: bool = False) -> None:
        """Stop (if running) and undefine the domain of ``instance``.

        ``clean_shutdown`` first asks the guest to shut down (ACPI) and
        waits up to ``[libvirt] shutdown_timeout`` seconds for it to power
        off; a guest still running then is destroyed. A missing domain is
        fine. Raises ``HypervisorUnavailable`` when the connection is lost
        and ``VirtDriverError`` when libvirt refuses.
        """
        with self._calling("destroying %s" % instance.uuid, reading=False) as conn:
            try:
                dom = conn.lookupByUUIDString(instance.uuid)
                if clean_shutdown and dom.isActive():
                    self._shut_down(dom, instance.uuid)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise

    def _shut_down(self, dom: libvirt.virDomain, uuid: str) -> bool:
        """Ask ``dom`` to shut down; wait for it up to shutdown_timeout.
        Returns whether it stopped by itself."""
        timeout = float(self._conf.libvirt.shutdown_timeout)
        if timeout <= 0:
            return False
        try:
            dom.shutdown()
        except libvirt.libvirtError as e:
            LOG.warning("Guest %s refused the shutdown request: %s", uuid, e)
            return False
        deadline = time.monotonic() + timeout
        while dom.isActive():
            left = deadline - time.monotonic()
            if left <= 0:
                LOG.warning("Guest %s did not shut down within %ss; "
                            "destroying it", uuid, int(timeout))
                return False
            time.sleep(min(_SHUTDOWN_POLL, left))
        LOG.info("Guest %s shut down cleanly", uuid)
        return True
