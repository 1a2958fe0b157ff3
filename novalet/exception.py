"""The novalet exception tree.

Every error novalet raises on purpose derives from ``NovaletException`` and
carries a message template filled from keyword arguments::

    NovaletException
     +-- NotFound
     |    +-- ServiceNotFound, ComputeHostNotFound, InstanceNotFound,
     |        MigrationNotFound
     +-- Conflict
     |    +-- ServiceBinaryExists, ComputeHostExists, InstanceExists,
     |        ServiceHasInstances, ServiceIsUp
     +-- Invalid
     |    +-- ObjectFieldInvalid, ObjectActionError, InvalidResourceView,
     |        InvalidJSONValue, InvalidHostName
     |    +-- ConfigurationError
     |         +-- AppLoadError, AuthKeyError
     +-- DispatchRefused            (the conductor would not run a call)
     |    +-- UnknownObject, UnsupportedObjectVersion, MethodNotRemotable,
     |        MalformedRequest, UnsupportedRPCVersion
     +-- AuthError                  (who asks, and what they may do)
     |    +-- SignatureRefused      (the request's signature was not accepted)
     |    +-- Forbidden             (the verified caller may not do this)
     +-- DBNotAllowed               (a process without database access used it)
     +-- DatabaseUnavailable
     +-- SchemaNotCurrent           (the database is behind this release)
     |    +-- SchemaMissing         (it has no schema at all: never synced)
     |    +-- SchemaIncomplete      (a statement names a table or column it
     |                               lacks: not synced, or no migration)
     +-- RPCUnavailable
     |    +-- RPCTimeout, BrokerUnavailable
     |    +-- ReplyRefused          (a reply not authenticated for its call)
     +-- ComputeResourcesUnavailable
     +-- ServiceTooOld
     +-- MetricsPortUnavailable     (``[metrics] bind_port`` cannot be bound)
     +-- VirtDriverError
          +-- HypervisorUnavailable

What crosses RPC (a call to the conductor or to a compute, over any
transport, and the in-process conductor alike):

* an exception from this module raised by the server is re-raised in the
  caller as its class (a subclass of it named ``<Class>_Remote``: ``except
  ServiceNotFound`` catches it, ``.kwargs`` and the message come along). So
  is a ``NovaletException`` subclass of a module an app declares in
  ``App(..., exceptions=["myapp.exception"])`` (the core app declares this
  one): ``novalet.rpc.ALLOWED_EXMODS`` is this module and every loaded
  app's. Such a class keeps this base's ``__init__(message=None,
  **kwargs)`` signature: the caller rebuilds it from its message and
  kwargs;
* anything else, Python's builtins (``TypeError``, ``ValueError``,
  ``KeyError``, ...) included, arrives as ``oslo_messaging.RemoteError``:
  ``exc_type`` is the original class name, ``value`` its message,
  ``traceback`` the server's; the server logs it with its traceback (it is a
  bug there, not an answer). oslo.messaging on its own re-raises builtins as
  plain builtins, which a caller cannot tell from its own; novalet's servers
  send them as ``RemoteError`` instead (``novalet.rpc.remote_form``).
  Services of releases 1 and 2 still send builtins as themselves.
"""

from __future__ import annotations

from typing import Any


class NovaletException(Exception):
    """Base of every novalet error; formats ``msg_fmt`` with its kwargs."""

    msg_fmt = "An unknown error occurred."
    code = 500

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        # kwargs cross RPC as JSON: keep them plain.
        kwargs = {k: v if isinstance(v, (str, int, float, bool, type(None)))
                  else str(v) for k, v in kwargs.items()}
        self.kwargs = kwargs
        if not message:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                # A missing keyword must not hide the error itself.
                message = "%s (%s)" % (
                    self.msg_fmt,
                    ", ".join("%s=%r" % kv for kv in sorted(kwargs.items())))
        self.message = str(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class NotFound(NovaletException):
    """A record does not exist (or is deleted)."""
    msg_fmt = "Resource could not be found."
    code = 404


class ServiceNotFound(NotFound):
    """No live service matches."""
    msg_fmt = "Service %(service)s could not be found."


class ComputeHostNotFound(NotFound):
    """No live compute node matches."""
    msg_fmt = "Compute node %(node)s could not be found."


class InstanceNotFound(NotFound):
    """No live instance matches."""
    msg_fmt = "Instance %(instance)s could not be found."


class MigrationNotFound(NotFound):
    """No live migration matches."""
    msg_fmt = "Migration %(migration)s could not be found."


class Conflict(NovaletException):
    """The request clashes with the current state."""
    msg_fmt = "Conflict: %(reason)s"
    code = 409


class ServiceBinaryExists(Conflict):
    """A live service with this host and binary exists."""
    msg_fmt = "Service with host %(host)s binary %(binary)s exists."


class ComputeHostExists(Conflict):
    """A live compute node with this host and nodename exists."""
    msg_fmt = "Compute node %(host)s/%(node)s exists."


class InstanceExists(Conflict):
    """A live instance with this uuid exists."""
    msg_fmt = "Instance %(uuid)s exists."


class ServiceIsUp(Conflict):
    """A running service cannot be deleted without ``--force``."""
    msg_fmt = ("Service %(host)s/%(binary)s is up (last heartbeat %(age)s): "
               "stop %(binary)s on %(host)s first and wait until "
               "'novalet-manage service list' shows it down (up to "
               "service_down_time, %(down_time)ss), or pass --force to delete "
               "it anyway (a running service registers again at its next "
               "heartbeat).")


class ServiceHasInstances(Conflict):
    """A compute service still hosts instances and cannot be deleted."""
    msg_fmt = ("Service %(host)s/%(binary)s still hosts %(count)d "
               "instance(s); move or delete them first.")


class Invalid(NovaletException):
    """A value or request is not acceptable."""
    msg_fmt = "Invalid: %(reason)s"
    code = 400


class ObjectFieldInvalid(Invalid, ValueError):
    """A field was given a value of the wrong type or range."""
    msg_fmt = "%(objname)s.%(field)s: invalid value %(value)r: %(reason)s"


class InvalidJSONValue(Invalid):
    """A JSON value (stored or received) is not what its field holds."""
    msg_fmt = "Invalid JSON for %(what)s: %(reason)s"


class ObjectActionError(Invalid):
    """An object method cannot run in the object's current state."""
    msg_fmt = "Object action %(action)s failed because: %(reason)s"


class InvalidResourceView(Invalid):
    """A virt driver returned an incomplete resource view."""
    msg_fmt = "Resource view of node %(node)s is missing keys: %(missing)s"


class ConfigurationError(Invalid):
    """The configuration cannot work."""
    msg_fmt = "Configuration error: %(reason)s"


class AppLoadError(ConfigurationError):
    """An app (``novalet.apps`` entry point) cannot be loaded."""
    msg_fmt = "App %(app)s cannot be loaded: %(reason)s"


class InvalidHostName(Invalid):
    """A host name is not a canonical one (``novalet.auth.keys``)."""
    msg_fmt = ("Host name %(host)r is not canonical: %(reason)s (lower-case "
               "ASCII letters, digits, '-' and '.' only)")


class AuthKeyError(ConfigurationError):
    """A key file cannot be read, is too open, or is not a novalet key."""
    msg_fmt = "Key file %(path)s: %(reason)s"


class AuthError(NovaletException):
    """Base of the errors about the caller's identity and rights."""
    msg_fmt = "Not allowed: %(reason)s"
    code = 403


class SignatureRefused(AuthError):
    """The request carries no signature, or one that does not verify."""
    msg_fmt = "Request refused: %(reason)s"
    code = 401


class Forbidden(AuthError):
    """The verified caller may not do this; nothing was changed."""
    msg_fmt = "%(principal)s may not %(action)s: %(reason)s"


class DispatchRefused(NovaletException):
    """The conductor refused to run a requested method."""
    msg_fmt = "Refused to dispatch: %(reason)s"
    code = 400


class UnknownObject(DispatchRefused):
    """No registered object has this name (or namespace)."""
    msg_fmt = "Unknown object %(objname)s: %(reason)s"


class UnknownNamespace(UnknownObject):
    """A primitive or call names an object namespace no loaded app owns."""
    msg_fmt = ("Unknown object namespace %(namespace)s (object %(objname)s): "
               "the loaded apps are %(loaded)s")


class UnsupportedObjectVersion(DispatchRefused):
    """The object version is newer than this service knows."""
    msg_fmt = ("Object %(objname)s version %(version)s is not supported "
               "(newest known: %(supported)s)")


class MethodNotRemotable(DispatchRefused):
    """The method does not exist or is not marked remotable."""
    msg_fmt = "%(objname)s.%(method)s is not a remotable method"


class MalformedRequest(DispatchRefused):
    """The RPC message could not be turned into objects."""
    msg_fmt = "Malformed request: %(reason)s"


class UnsupportedRPCVersion(DispatchRefused):
    """The peer's RPC API is older than the version sent (a pin above it)."""
    msg_fmt = ("%(topic)s does not serve RPC version %(version)s of "
               "%(method)s: it runs an older release (check [upgrade_levels])")


class DBNotAllowed(NovaletException):
    """This process may not touch the database."""
    msg_fmt = ("%(binary)s may not use the database (%(function)s called "
               "from %(caller)s); remotable methods must go through the "
               "conductor")


class DatabaseUnavailable(NovaletException):
    """The database could not be reached."""
    msg_fmt = "Database %(url)s unreachable: %(reason)s"


class SchemaNotCurrent(NovaletException):
    """The database schema is older than this release needs."""
    msg_fmt = ("%(what)s is at %(current)s, this release needs "
               "%(head)s: run 'novalet-manage db sync'")

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("what", "database schema")
        super().__init__(message, **kwargs)


class SchemaMissing(SchemaNotCurrent):
    """The database has no novalet schema (or no database file) yet."""
    msg_fmt = ("the database at %(url)s has no schema: run 'novalet-manage "
               "db sync'")


class SchemaIncomplete(SchemaNotCurrent):
    """A statement names a table or column the database does not have."""
    msg_fmt = ("%(what)s has no %(missing)s (the database is at %(current)s, "
               "the code's head is %(head)s): run 'novalet-manage db sync'; "
               "if it is at the head already, the app's migrations lack it")


class RPCUnavailable(NovaletException):
    """A message could not be delivered (broker down, no server)."""
    msg_fmt = "RPC %(topic)s.%(method)s could not be delivered: %(reason)s"


class RPCTimeout(RPCUnavailable):
    """No answer within the call's timeout."""
    msg_fmt = "%(topic)s did not answer %(method)s within %(timeout)ss"


class BrokerUnavailable(RPCUnavailable):
    """The message broker of ``transport_url`` cannot be reached."""
    msg_fmt = "Message broker %(url)s unreachable: %(reason)s"


class ReplyRefused(RPCUnavailable):
    """A reply that was not sent for this call by the server it called (its
    MAC does not verify, or it carries none): refused before anything in it
    is rebuilt; what the call did is unknown, as when a reply is lost."""
    msg_fmt = "Refused the reply to %(topic)s.%(method)s: %(reason)s"


class ComputeResourcesUnavailable(NovaletException):
    """A claim does not fit on the node."""
    msg_fmt = "Insufficient compute resources on %(node)s: %(reason)s"


class ServiceTooOld(NovaletException):
    """A service older than the oldest supported release is registered."""
    msg_fmt = ("Service %(binary)s on %(host)s has version %(version)s; the "
               "oldest this release supports is %(minimum)s")


class MetricsPortUnavailable(NovaletException):
    """The metrics endpoint cannot listen on ``[metrics] bind_host:bind_port``."""
    msg_fmt = ("[metrics] bind_port %(port)s (bind_host %(host)s) cannot be "
               "used: %(reason)s. Stop what holds it or set another [metrics] "
               "bind_port")


class VirtDriverError(NovaletException):
    """The virt driver failed."""
    msg_fmt = "Virt driver error: %(reason)s"


class HypervisorUnavailable(VirtDriverError):
    """The hypervisor connection is lost or cannot be opened."""
    msg_fmt = "Hypervisor %(uri)s unavailable: %(reason)s"
