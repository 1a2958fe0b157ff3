"""``inprocess``: a conductor inside this process, without a transport.

Every argument and result crosses the same serializer as on the wire (and a
JSON round trip), so an object behaves exactly as it would through
``novalet-conductor``; only the broker is missing. The conductor's work runs
in the caller's thread, which may use the database while it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from novalet import app, exception, rpc
from novalet.conductor import manager as conductor_manager
from novalet.indirection import base
from novalet.objects import base as objects_base


class LocalConductor:
    """The conductor client's calls (``ConductorAPI``'s), each serialized,
    run in a local ``ConductorManager`` and its answer serialized back."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.manager = conductor_manager.ConductorManager(conf)
        self._serializer = rpc.RequestContextSerializer(
            objects_base.NovaletObjectSerializer())

    def call(self, context: Any, method: str, **kwargs: Any) -> Any:
        ser = self._serializer
        wire_ctxt = rpc.wire_roundtrip(ser.serialize_context(context))
        wire_kwargs = rpc.wire_roundtrip(
            {k: ser.serialize_entity(context, v) for k, v in kwargs.items()})
        with rpc.errors_as_on_the_wire(), objects_base.run_locally():
            server_ctxt = ser.deserialize_context(wire_ctxt)
            server_kwargs = {k: ser.deserialize_entity(server_ctxt, v)
                             for k, v in wire_kwargs.items()}
            endpoint = getattr(self.manager, method, None)
            if not getattr(endpoint, "novalet_rpc_exposed", False):
                raise exception.MethodNotRemotable(
                    objname=type(self.manager).__name__, method=method)
            assert endpoint is not None  # not exposed: refused above
            result = endpoint(server_ctxt, **server_kwargs)
            wire_result = rpc.wire_roundtrip(
                ser.serialize_entity(server_ctxt, result))
        return ser.deserialize_entity(context, wire_result)

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any,
                      object_versions: Mapping[str, str] | None = None) -> Any:
        return self.call(context, "object_action", objinst=objinst,
                         objmethod=objmethod, args=args, kwargs=kwargs,
                         object_versions=object_versions)

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str, object_versions: Any,
                                     args: Any, kwargs: Any,
                                     objnamespace: str = app.CORE) -> Any:
        """``objnamespace`` goes only for an app's class, as the RPC
        client's 1.0 form of a core class call leaves it out."""
        extra = {} if objnamespace == app.CORE else {"objnamespace": objnamespace}
        return self.call(context, "object_class_action_versions",
                         objname=objname, objmethod=objmethod,
                         object_versions=object_versions, args=args,
                         kwargs=kwargs, **extra)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: Any) -> Any:
        return self.call(context, "object_backport_versions",
                         objinst=objinst, object_versions=object_versions)


class InProcessIndirectionAPI(base.ConductorIndirectionAPI):
    """Serializes each call, runs it in a local ``ConductorManager``,
    serializes the answer back (``LocalConductor``)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conductor = LocalConductor(conf)
        super().__init__(conf, self.conductor)

    @property
    def manager(self) -> conductor_manager.ConductorManager:
        """The conductor that runs the calls."""
        return self.conductor.manager

    @manager.setter
    def manager(self, value: conductor_manager.ConductorManager) -> None:
        self.conductor.manager = value

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        return self.conductor.object_backport_versions(context, objinst,
                                                       object_versions)
