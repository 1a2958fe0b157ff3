"""``NovaletObjectSerializer``: objects to primitives and back for RPC;
errors in what it receives become typed ``novalet.exception`` errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import exception as ovo_exc

from novalet import exception
from novalet.objects import codec
from novalet.objects.base import (
    _NAME_KEY,
    _NAMESPACE_KEY,
    NovaletObject,
    _namespaced,
    run_locally,
)

_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})

class NovaletObjectSerializer(ovo_base.VersionedObjectSerializer):
    """Objects to primitives and back; errors become ``novalet.exception``.

    An object newer than this process knows is backported through the
    indirection API (``object_backport_versions``) when there is one; without
    one (the conductor) it is refused with ``UnsupportedObjectVersion``.
    """

    OBJ_BASE_CLASS = NovaletObject

    def __init__(self, *, local: bool = False,
                 on_refused: Callable[[Any], None] | None = None) -> None:
        """``local`` (the conductor): objects are rebuilt without asking any
        indirection API, even if this process has one (an object too new is
        refused, never sent back out for a backport); ``on_refused(entity)``
        hears of each argument refused with a ``NovaletException``."""
        super().__init__()
        self._local = local
        self._on_refused = on_refused

    @staticmethod
    def is_plain(entity: Any, depth: int = 3) -> bool:
        """``entity`` is a scalar, or dicts, lists and tuples of scalars
        nested at most ``depth`` deep, with no object primitive among them:
        (de)serializing it returns it unchanged."""
        kind = type(entity)
        if kind in _SCALAR_TYPES:
            return True
        if depth == 0:
            return False
        if kind is dict:
            if _NAME_KEY in entity:
                return False
            values = entity.values()
        elif kind is list or kind is tuple:
            values = entity
        else:
            return False
        is_plain = NovaletObjectSerializer.is_plain
        return all(type(v) in _SCALAR_TYPES or is_plain(v, depth - 1)
                   for v in values)

    def serialize_entity(self, context: Any, entity: Any) -> Any:
        if self.is_plain(entity):
            return entity
        return super().serialize_entity(context, entity)

    def deserialize_entity(self, context: Any, entity: Any) -> Any:
        if self.is_plain(entity):
            return entity
        if not self._local:
            return super().deserialize_entity(context, entity)
        try:
            with run_locally():
                return super().deserialize_entity(context, entity)
        except exception.NovaletException:
            if self._on_refused is not None:
                self._on_refused(entity)
            raise

    def _do_backport(self, context: Any, objprim: Any, objclass: Any) -> Any:
        # As the library's, with the tree of the primitive's own namespace
        # (the library looks the class up by name alone).
        namespace = objprim.get(_NAMESPACE_KEY, codec.CORE)
        tree = dict(codec.version_tree(objprim[_NAME_KEY], namespace))
        api = self.OBJ_BASE_CLASS.indirection_api
        if namespace != codec.CORE:
            api = _namespaced(api, namespace)
        return api.object_backport_versions(context, objprim, tree)

    def _process_object(self, context: Any, objprim: Any) -> Any:
        if not isinstance(objprim, dict):
            raise exception.MalformedRequest(
                reason="object primitive is a %s" % type(objprim).__name__)
        name = objprim.get(_NAME_KEY)
        if type(name) is not str:
            raise exception.MalformedRequest(
                reason="object primitive without a name string: %r" % (name,))
        namespace = objprim.get(_NAMESPACE_KEY)
        if type(namespace) is not str:
            raise exception.MalformedRequest(
                reason="%s primitive without a namespace string: %r"
                % (name, namespace))
        # Checked first: oslo.versionedobjects logs an unknown name as an
        # error, but it is the sender's mistake, not ours.
        codec.check_known(name, namespace)
        try:
            return super()._process_object(context, objprim)
        except ovo_exc.UnsupportedObjectError as e:
            raise exception.UnknownObject(
                objname=objprim.get("novalet_object.name", "?"), reason=e)
        except ovo_exc.IncompatibleObjectVersion as e:
            raise exception.UnsupportedObjectVersion(
                objname=e.kwargs.get("objname"),
                version=e.kwargs.get("objver"),
                supported=e.kwargs.get("supported"))
        except (exception.NovaletException, exception.ObjectFieldInvalid):
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise exception.MalformedRequest(
                reason="bad %s primitive: %s: %s" % (
                    objprim.get("novalet_object.name", "object"),
                    type(e).__name__, e))

