"""``inprocess``: a conductor inside this process, without a transport.

Every argument and result crosses the same serializer as on the wire (and a
JSON round trip), so an object behaves exactly as it would through
``novalet-conductor``; only the broker is missing. The conductor's work runs
in the caller's thread, which may use the database while it does.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet import exception, rpc
from novalet.conductor import manager
from novalet.indirection import base, negotiation
from novalet.objects import base as objects_base


class InProcessIndirectionAPI(base.IndirectionAPI):
    """Serializes each call, runs it in a local ``ConductorManager``,
    serializes the answer back."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.manager = manager.ConductorManager(conf)
        self._serializer = rpc.RequestContextSerializer(
            objects_base.NovaletObjectSerializer())
        self.caps = negotiation.conductor_caps(conf, self._class_action)
        self.negotiator = negotiation.Negotiator(
            self.caps, negotiation.conductor_app_caps(conf, self._class_action))

    def _call(self, context: Any, method: str, **kwargs: Any) -> Any:
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
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        return self.negotiator.object_action(
            context, objinst, objmethod, args, kwargs, self._object_action)

    def _object_action(self, context: Any, objinst: Any, objmethod: str,
                       args: Any, kwargs: Any, manifest: Any) -> Any:
        updates, result = self._call(context, "object_action", objinst=objinst,
                                     objmethod=objmethod, args=args,
                                     kwargs=kwargs, object_versions=manifest)
        return updates, result

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str,
                                     object_versions: dict[str, str],
                                     args: Any, kwargs: Any,
                                     objnamespace: str = "novalet") -> Any:
        return self.negotiator.object_class_action(
            context, objname, objmethod, object_versions, args, kwargs,
            namespace=objnamespace, call=
            self._class_action)

    def _class_action(self, context: Any, objname: str, objmethod: str,
                      object_versions: Any, args: Any, kwargs: Any,
                      **namespace: str) -> Any:
        return self._call(context, "object_class_action_versions",
                          objname=objname, objmethod=objmethod,
                          object_versions=object_versions, args=args,
                          kwargs=kwargs, **namespace)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        return self._call(context, "object_backport_versions",
                          objinst=objinst, object_versions=object_versions)

    def invalidate_caps(self) -> None:
        """Re-read the conductors' versions at the next call (SIGHUP)."""
        self.negotiator.invalidate()
