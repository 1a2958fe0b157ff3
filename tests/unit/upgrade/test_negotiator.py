"""The negotiator over the client it is given: no indirection plugin, no
transport. What it hands the client is what a conductor of the caps reads;
the caps' own question goes through the same client, in the oldest
supported release's form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from novalet import app, context, exception, objects, upgrade
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
        self.arguments: list[tuple[Any, Any]] = []
        self.contexts: list[Any] = []
        self.class_calls: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self.updates: dict[str, Any] = {}

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any,
                      object_versions: Mapping[str, str] | None = None) -> Any:
        self.actions.append((objinst, objmethod, object_versions))
        self.arguments.append((args, kwargs))
        self.contexts.append(context)
        return dict(self.updates), None

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str, object_versions: Any,
                                     args: Any, kwargs: Any, **namespace: str) -> Any:
        self.class_calls.append((objname, objmethod, dict(object_versions), namespace))
        self.contexts.append(context)
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


class RecordingVersions:
    """``novalet.objects.versions``, recording which way the updates were
    read."""

    def __init__(self) -> None:
        self.read: list[tuple[str, Any]] = []
        self.version_tree = versions.version_tree
        self.is_object = versions.is_object

    def make_current(self, value: Any) -> Any:
        self.read.append(("current", value))
        return versions.make_current(value)

    def updates_at_current(self, objinst: Any, sent_version: str,
                           updates: dict[str, Any]) -> dict[str, Any]:
        self.read.append(("at " + sent_version, dict(updates)))
        return versions.updates_at_current(objinst, sent_version, updates)


def test_the_caps_question_and_its_wiring(conf: Any) -> None:
    """``for_conductors`` asks through the client with the caller's
    context, in release 1's form; names the services that hold the caps
    down; hands the RPC cap to ``on_change``; waits at most
    rpc_response_timeout + 5 s for the first answer."""
    conf("rpc_response_timeout", 7)
    conf("refresh_interval", 11, "upgrade_levels")
    conductor = Conductor(service_version=1)
    caps_seen: list[str | None] = []
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, versions,
                                        on_change=caps_seen.append)
    ctxt = context.get_admin_context()
    negotiator.object_action(ctxt, _node(), "save", (), {})
    assert caps_seen == [RELEASE_1["conductor_rpc"]]
    assert [call[:3] for call in conductor.class_calls] == [
        ("Service", "get_minimum_version", {"Service": "1.0"}),
        ("ServiceList", "get_by_binary", {"ServiceList": "1.0", "Service": "1.0"})]
    assert all(c is ctxt for c in conductor.contexts)
    caps = negotiator.caps
    assert (caps.binary, caps.rpc_api) == ("novalet-conductor", "conductor_rpc")
    assert caps.oldest_service_version() == 1
    assert caps._wait_bound() == 12.0 and caps._refresh_interval() == 11.0


def test_a_pin_is_read_from_the_option_without_asking(conf: Any) -> None:
    conf("conductor", "1", "upgrade_levels")
    conductor = Conductor()
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, versions)
    negotiator.object_action(context.get_admin_context(), _node(), "save", (), {})
    [(sent, _method, manifest)] = conductor.actions
    assert sent["novalet_object.version"] == "1.0"
    assert conductor.class_calls == []


def test_updates_sent_back_at_an_older_version_are_read_as_such(conf: Any) -> None:
    recording = RecordingVersions()
    conductor = Conductor(service_version=1)
    conductor.updates = {"memory_mb_used": 7}
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, recording)
    node = _node()
    node.memory_mb_used = 512
    updates, _ = negotiator.object_action(context.get_admin_context(), node,
                                          "save", (), {})
    assert recording.read[0] == ("at 1.0", {"memory_mb_used": 7})
    assert updates["memory_mb_used"] == 7
    # At the newest release: the updates are at this process's versions.
    recording.read.clear()
    conductor = Conductor()
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, recording)
    negotiator.object_action(context.get_admin_context(), _node(), "save", (), {})
    assert recording.read == []  # uncapped: nothing to read again


def test_objects_among_the_arguments_go_at_the_caps(conf: Any) -> None:
    conductor = Conductor(service_version=1)
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, versions)
    ctxt = context.get_admin_context()
    other = _node()
    negotiator.object_action(ctxt, _node(), "save", ([other],), {"n": other})
    [(args, kwargs)] = conductor.arguments
    assert args[0][0]["novalet_object.version"] == "1.0"
    assert kwargs["n"]["novalet_object.version"] == "1.0"
    negotiator.object_class_action(ctxt, "ComputeNodeList", "get_all",
                                   {"ComputeNodeList": "1.1", "ComputeNode": "1.1"},
                                   (other,), {})
    assert conductor.class_calls[-1][2] == {"ComputeNodeList": "1.0",
                                            "ComputeNode": "1.0"}


def test_an_object_the_capped_conductors_do_not_know_is_refused(conf: Any) -> None:
    conf("conductor", "1", "upgrade_levels")
    conductor = Conductor()
    negotiator = upgrade.for_conductors(novalet_conf.CONF, conductor, versions)
    with pytest.raises(exception.UnsupportedObjectVersion) as info:
        negotiator.object_class_action(
            context.get_admin_context(), "PciDevicePoolList", "get",
            {"PciDevicePoolList": "1.0", "PciDevicePool": "1.0"}, (), {})
    assert info.value.kwargs == {
        "objname": "PciDevicePoolList", "version": "1.0",
        "supported": "none: the conductors (capped to novalet-conductor) do "
                     "not know it"}
    assert conductor.class_calls == []


WIDGETS = app.App("widgets", releases={"1": {"Widget": "1.0"},
                                       "2": {"Widget": "1.1", "WidgetList": "1.0"}})


class Widget:
    """The little of an app's object the negotiator touches."""

    OBJ_PROJECT_NAMESPACE = "widgets"
    VERSION = "1.1"

    def obj_make_current(self) -> None:
        pass

    def obj_name(self) -> str:
        return "Widget"


class WidgetVersions(RecordingVersions):
    def __init__(self) -> None:
        super().__init__()
        self.version_tree = lambda name, namespace: {"Widget": "1.1",
                                                     "ComputeNode": "1.1"}


def _widgets_negotiator(conductor: Conductor, setting: str | None,
                        objects_: Any = None) -> upgrade.Negotiator:
    # The core's caps at this release (auto, every conductor at this code's
    # service version): only the app's caps may lower anything here.
    core = upgrade.core_caps("novalet-conductor", "conductor_rpc", lambda: None,
                             lambda ctxt: releases.SERVICE_VERSION)

    def app_caps(namespace: str) -> upgrade.VersionCaps | None:
        if setting is None:
            return None
        return upgrade.app_caps("novalet-conductor", WIDGETS, lambda: setting,
                                lambda ctxt: [])
    return upgrade.Negotiator(conductor, objects_ or WidgetVersions(), core, app_caps)


def test_an_app_without_caps_gets_its_object_sent_as_it_is() -> None:
    conductor = Conductor()
    recording = WidgetVersions()
    negotiator = _widgets_negotiator(conductor, None, recording)
    widget = Widget()
    negotiator.object_action(None, widget, "save", (), {})
    [(sent, _method, manifest)] = conductor.actions
    assert sent is widget
    assert dict(manifest) == {"Widget": "1.1", "ComputeNode": "1.1"}
    assert recording.read == []


def test_an_app_s_caps_govern_only_its_own_objects() -> None:
    """A core object in an app's manifest keeps its version: the app's
    caps do not govern it (the core's do, when it is sent on its own)."""
    negotiator = _widgets_negotiator(Conductor(), "1")
    manifest, capped = negotiator.manifest(None, "Widget", namespace="widgets")
    assert capped and dict(manifest) == {"Widget": "1.0", "ComputeNode": "1.1"}


def test_an_app_object_its_capped_release_lacks_is_refused() -> None:
    conductor = Conductor()
    negotiator = _widgets_negotiator(conductor, "1")
    with pytest.raises(exception.UnsupportedObjectVersion) as info:
        negotiator.object_class_action(None, "WidgetList", "get",
                                       {"WidgetList": "1.0", "Widget": "1.1"}, (), {},
                                       namespace="widgets")
    assert info.value.kwargs["supported"] == (
        "none: the conductors (capped to novalet-conductor of widgets) do not "
        "know it")
    assert info.value.kwargs["version"] == "1.0"
    assert conductor.class_calls == []
