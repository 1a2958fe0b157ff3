"""The negotiator over the client it is given: no indirection plugin, no
transport. What it hands the client is what a conductor of the caps reads;
the caps' own question goes through the same client, in the oldest
supported release's form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novalet import app, context, objects, upgrade
from novalet import conf as novalet_conf
from novalet.objects import versions
from novalet.upgrade import releases

RELEASE_1 = releases.RELEASE_MAPPING["1"]


class Conductor:
    """A conductor client that records what it is handed; it answers the
    caps' question with ``service_version``."""

    def __init__(self, service_version: int = releases.SERVICE_VERSION) -> None:
        self.service_version = service_version
        self.actions: list[tuple[Any, str, Mapping[str, str] | None]] = []
        self.class_calls: list[tuple[str, str, dict[str, str], dict[str, str]]] = []

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any,
                      object_versions: Mapping[str, str] | None = None) -> Any:
        self.actions.append((objinst, objmethod, object_versions))
        return {}, None

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str, object_versions: Any,
                                     args: Any, kwargs: Any, **namespace: str) -> Any:
        self.class_calls.append((objname, objmethod, dict(object_versions), namespace))
        if (objname, objmethod) == ("Service", "get_minimum_version"):
            return self.service_version
        if (objname, objmethod) == ("ServiceList", "get_by_binary"):
            return []  # who holds the caps down, for the log
        return None


def _node() -> Any:
    node = objects.ComputeNode(
        context.get_admin_context(), id=3, host="h", hypervisor_hostname="n",
        vcpus=4, memory_mb=1024, local_gb=10, hypervisor_type="fake",
        hypervisor_version=1, cpu_info="{}")
    node.obj_reset_changes()
    return node


def test_uncapped_the_client_gets_the_object_itself(conf: Any) -> None:
    conductor = Conductor()
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, versions)
    node = _node()
    node.memory_mb_used = 512
    negotiator.object_action(context.get_admin_context(), node, "save", (), {})
    [(sent, method, manifest)] = conductor.actions
    assert sent is node and method == "save"
    assert manifest == versions.version_tree("ComputeNode", app.CORE)
    # auto asked the conductors through the client, at release 1's Service.
    assert conductor.class_calls == [("Service", "get_minimum_version",
                                      {"Service": RELEASE_1["objects"]["Service"]}, {})]


def test_under_release_1_the_client_gets_release_1_s_form(conf: Any) -> None:
    conductor = Conductor(service_version=1)
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, versions)
    node = _node()
    node.memory_mb_used = 512
    node.pci_device_pools = objects.PciDevicePoolList(objects=[])
    updates, _ = negotiator.object_action(context.get_admin_context(), node,
                                          "save", (), {})
    [(sent, _method, manifest)] = conductor.actions
    assert sent["novalet_object.version"] == "1.0"
    assert sent["novalet_object.changes"] == ["memory_mb_used"]
    assert dict(manifest) == {"ComputeNode": "1.0"}
    # What release 1 cannot carry stays pending for when the caps rise.
    assert updates["obj_what_changed"] == ["pci_device_pools"]


def test_an_app_s_class_call_names_its_namespace_and_the_core_s_does_not(
        conf: Any) -> None:
    conductor = Conductor()
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, versions)
    ctxt = context.get_admin_context()
    negotiator.object_class_action(ctxt, "ServiceList", "get_all",
                                   {"ServiceList": "1.2", "Service": "1.2"}, (), {})
    negotiator.object_class_action(ctxt, "Widget", "get", {"Widget": "1.0"}, (), {},
                                   namespace="widgets")
    assert [call[3] for call in conductor.class_calls[1:]] == [
        {}, {"objnamespace": "widgets"}]
