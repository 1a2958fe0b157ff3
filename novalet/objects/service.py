"""Service: one running novalet service (host + binary) and its heartbeat."""

from __future__ import annotations

from typing import Any

from oslo_serialization import jsonutils
from oslo_utils import uuidutils, versionutils

from novalet import exception
from novalet.db import models
from novalet.db import services as db_services
from novalet.objects import base, fields, retry, stored_json
from novalet.upgrade import releases


@base.NovaletObjectRegistry.register
class Service(base.NovaletPersistentObject, base.NovaletObject):
    """A service record. ``last_seen_up`` is set by the database clock and
    moves only when a save raises ``report_count`` (a heartbeat)."""

    # Version 1.0: initial version (release 1)
    # Version 1.1: added started_at, when the running process started
    #              (release 2)
    # Version 1.2: added app_releases, the release of each app it runs;
    #              get_app_releases() (release 3)
    VERSION = "1.2"
    #: Its table (the conductor checks fields against its columns).
    obj_db_table = models.Service

    fields = {
        "id": fields.IntegerField(read_only=True),
        "uuid": fields.StrictUUIDField(),
        "host": fields.HostnameField(),
        "binary": fields.StringField(),
        "topic": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "report_count": fields.NonNegativeIntegerField(default=0),
        "disabled": fields.BooleanField(default=False),
        "disabled_reason": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "forced_down": fields.BooleanField(default=False),
        "last_seen_up": fields.DateTimeField(nullable=True, default=None),
        "version": fields.NonNegativeIntegerField(default=releases.SERVICE_VERSION),
        "started_at": fields.DateTimeField(nullable=True, default=None),
        # None: not recorded (a service of release 2 or older).
        "app_releases": fields.DictOfStringsField(nullable=True, default=None),  # type: ignore[arg-type]
        **base.NovaletPersistentObject.fields,
    }

    # Field attributes read here, for mypy (oslo.versionedobjects sets them).
    id: int

    def obj_make_compatible(self, primitive: dict[str, Any],
                            target_version: str) -> None:
        super().obj_make_compatible(primitive, target_version)
        target = versionutils.convert_version_to_tuple(target_version)
        if target < (1, 2):
            primitive.pop("app_releases", None)
        if target < (1, 1):
            primitive.pop("started_at", None)

    def obj_db_to_field(self, name: str, value: Any) -> Any:
        if name == "app_releases" and value is not None:
            return stored_json.read(
                self, "services", name, name, value,
                stored_json.parse_dict_of_strings, dict,
                row_label=" (%s/%s)" % tuple(
                    getattr(self, attr) if self.obj_attr_is_set(attr) else "?"
                    for attr in ("host", "binary")))
        return value

    def obj_field_to_db(self, name: str, value: Any) -> Any:
        if name == "app_releases" and value is not None:
            return jsonutils.dumps(value, sort_keys=True)
        return value

    def obj_implied_service_version(self) -> int:
        """The service version of whoever sent this object.

        Compatibility shim for release 1, whose services leave ``version``
        unset on create (the default was applied where create ran, i.e. on
        the conductor, which would record this release's version for a
        release 1 compute): a Service at object version 1.0 comes from a
        service version 1. Remove it with release 1's support, when
        ``OLDEST_SUPPORTED_SERVICE_VERSION`` rises above 1
        (``tests/unit/objects/test_compat.py`` holds us to it).
        """
        # Newest first: each release has its own Service version.
        for entry in reversed(releases.RELEASE_MAPPING.values()):
            if entry["objects"]["Service"] == self.VERSION:
                return int(entry["service_version"])
        return releases.SERVICE_VERSION

    @classmethod
    @base.remotable
    def get_by_id(cls, context: Any, service_id: int) -> Service:
        """The live service with this id; raises ``ServiceNotFound``."""
        return cls.obj_from_db(context, db_services.service_get(context, service_id))

    @classmethod
    @base.remotable
    def get_by_uuid(cls, context: Any, uuid: str) -> Service:
        """The live service with this uuid; raises ``ServiceNotFound``."""
        return cls.obj_from_db(context, db_services.service_get_by_uuid(context, uuid))

    @classmethod
    @base.remotable
    def get_by_host_and_binary(cls, context: Any, host: str,
                               binary: str) -> Service:
        """The live service ``binary`` on ``host``; raises ``ServiceNotFound``."""
        row = db_services.service_get_by_host_and_binary(context, host, binary)
        return cls.obj_from_db(context, row)

    @classmethod
    @base.remotable
    def get_minimum_version(cls, context: Any, binary: str) -> int:
        """The lowest ``version`` among live services of ``binary`` (0: none)."""
        return db_services.service_get_minimum_version(context, binary) or 0

    @classmethod
    @base.remotable
    def get_app_releases(cls, context: Any, binary: str) -> list[dict[str, str]]:
        """The ``app_releases`` of each live service of ``binary`` that
        records them (``{app: release}``; services of release 2 or older
        record none and are left out)."""
        if not isinstance(binary, str):
            raise exception.MalformedRequest(
                reason="get_app_releases takes a binary name")
        releases = []
        for text in db_services.service_get_app_releases(context, binary):
            try:
                releases.append(stored_json.parse_dict_of_strings(text))
            except exception.InvalidJSONValue:
                continue  # logged and rewritten where the row is read
        return releases

    @classmethod
    @base.remotable
    def get_db_time(cls, context: Any) -> str:
        """The database clock (UTC, ISO 8601 text, the same on every path),
        against which ``last_seen_up`` is compared."""
        return db_services.db_utcnow(context).replace(tzinfo=None).isoformat()

    @retry.caller_assigns_uuid
    @base.remotable
    def create(self) -> None:
        """Insert this service; raises ``ServiceBinaryExists`` if a live one
        with the same host and binary exists."""
        if self.obj_attr_is_set("id"):
            raise exception.ObjectActionError(action="create",
                                              reason="already created")
        if not self.obj_attr_is_set("uuid"):
            self.uuid = uuidutils.generate_uuid()
        if not self.obj_attr_is_set("version"):
            self.version = self.obj_implied_service_version()
        self.obj_set_defaults()
        row = db_services.service_create(self._context, self.obj_db_changes())
        self._from_db_object(self._context, self, row)

    @base.skip_if_unchanged
    @base.remotable
    def save(self) -> None:
        """Write the changed fields only; raises ``ServiceNotFound``."""
        row = db_services.service_update(self._context, self.id,
                                    self.obj_db_changes())
        self._from_db_object(self._context, self, row)

    @base.remotable
    def destroy(self) -> None:
        """Soft-delete this service and, in the same transaction, the compute
        nodes that belong to it (see ``novalet.db.services.service_destroy``);
        raises ``ServiceNotFound``, ``ServiceHasInstances``."""
        db_services.service_destroy(self._context, self.id)
        self.deleted = True
        self.obj_reset_changes(["deleted"])


@base.NovaletObjectRegistry.register
class ServiceList(base.ObjectListBase):
    # Version 1.0: initial version (release 1)
    # Version 1.1: Service 1.1; report_heartbeats() (release 2)
    # Version 1.2: Service 1.2 (release 3)
    VERSION = "1.2"
    child_versions = {"1.0": "1.0", "1.1": "1.1", "1.2": "1.2"}

    fields = {"objects": fields.ListOfObjectsField("Service")}

    @classmethod
    @base.remotable
    def get_all(cls, context: Any, binary: str | None = None,
                host: str | None = None) -> ServiceList:
        """Every live service, optionally of one binary and/or host."""
        # A fleet listing may come from a replica; one host's, the primary.
        rows = db_services.service_get_all(context, binary=binary, host=host,
                                      replica=host is None)
        return cls.obj_from_db(context, rows)

    @classmethod
    @base.remotable
    def report_heartbeats(cls, context: Any, service_ids: list[int]) -> list[int]:
        """One heartbeat for each service id (as ``Service.save()`` of
        ``report_count + 1`` would, for many services in one call and one
        UPDATE); returns the ids whose record no longer exists."""
        if (not isinstance(service_ids, list)
                or not all(type(i) is int for i in service_ids)):
            raise exception.MalformedRequest(
                reason="report_heartbeats takes a list of service ids")
        return db_services.service_heartbeat(context, service_ids)

    @classmethod
    @base.remotable
    def get_by_binary(cls, context: Any, binary: str) -> ServiceList:
        """Every live service of ``binary``."""
        rows = db_services.service_get_all(context, binary=binary, replica=True)
        return cls.obj_from_db(context, rows)
