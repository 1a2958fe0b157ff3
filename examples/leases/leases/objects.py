"""DHCP leases: a Lease (with its Subnet nested) and a LeaseList.

Lease 1.1 adds ``client_id`` (DHCP option 61); a 1.0 peer gets it dropped.
Lease 1.2 adds ``host``, the host whose agent handed it out: the table is
host-scoped by it (novalet_app), so an agent signed as host B can neither
create, change nor destroy host A's leases.
Every class is an object of the app ``leases`` through ``@APP.register``
(the namespace is said once, in ``leases.novalet_app``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from oslo_utils import versionutils

from leases import exception
from leases.novalet_app import APP
from novalet import db
from novalet.objects import base, fields

if TYPE_CHECKING:
    import netaddr

LEASES = sa.Table(
    "leases", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ip", sa.String(64)), sa.Column("mac", sa.String(32)),
    sa.Column("hostname", sa.String(255)), sa.Column("client_id", sa.String(255)),
    sa.Column("subnet_cidr", sa.String(64)), sa.Column("subnet_gateway", sa.String(64)),
    sa.Column("expires_at", sa.Integer), sa.Column("host", sa.String(255)))


@APP.register
class Subnet(base.NovaletObject):
    # Version 1.0: initial version
    VERSION = "1.0"
    fields = {"cidr": fields.IPNetworkField(), "gateway": fields.IPAddressField()}

    # Field attributes, for mypy (oslo.versionedobjects sets them).
    cidr: netaddr.IPNetwork
    gateway: netaddr.IPAddress


@APP.register
class Lease(base.NovaletObject):
    # Version 1.0: initial version (release 1)
    # Version 1.1: client_id (release 2)
    # Version 1.2: host, destroy() (release 3)
    VERSION = "1.2"
    fields = {
        "id": fields.IntegerField(read_only=True),
        "ip": fields.IPAddressField(),
        "mac": fields.MACAddressField(),
        "hostname": fields.StringField(nullable=True),
        "client_id": fields.StringField(nullable=True),
        "subnet": fields.ObjectField("Subnet"),
        "expires_at": fields.IntegerField(),
        "host": fields.StringField(nullable=True),
    }
    obj_relationships = {"subnet": [("1.0", "1.0")]}
    #: Not one column: made of subnet_cidr and subnet_gateway.
    obj_extra_fields = ["subnet"]

    # Field attributes, for mypy (oslo.versionedobjects sets them).
    id: int
    ip: netaddr.IPAddress
    mac: str
    hostname: str | None
    client_id: str | None
    subnet: Subnet
    expires_at: int
    host: str | None

    def obj_make_compatible(self, primitive: dict[str, Any], target_version: str) -> None:
        super().obj_make_compatible(primitive, target_version)
        if versionutils.convert_version_to_tuple(target_version) < (1, 2):
            primitive.pop("host", None)
        if versionutils.convert_version_to_tuple(target_version) < (1, 1):
            primitive.pop("client_id", None)

    @staticmethod
    def _from_db_object(context: Any, obj: Any, db_row: Any) -> Any:
        obj.subnet = Subnet(cidr=db_row.subnet_cidr, gateway=db_row.subnet_gateway)
        # The other fields, the context, and no changes pending.
        return base.NovaletObject._from_db_object(context, obj, db_row)

    @base.remotable
    def create(self) -> None:
        """Hand out this lease; raises ``IPAlreadyLeased``."""
        values = {"ip": str(self.ip), "mac": self.mac, "hostname": self.hostname,
                  "client_id": self.client_id if self.obj_attr_is_set("client_id") else None,
                  "subnet_cidr": str(self.subnet.cidr),
                  "subnet_gateway": str(self.subnet.gateway),
                  "expires_at": self.expires_at,
                  "host": self.host if self.obj_attr_is_set("host") else None}
        with db.writer.using(self._context) as session:
            taken = session.execute(sa.select(LEASES.c.id).where(
                LEASES.c.ip == values["ip"])).first()
            if taken is not None:
                raise exception.IPAlreadyLeased(ip=values["ip"])
            result = session.execute(sa.insert(LEASES).values(**values))
            row = session.execute(sa.select(LEASES).where(
                LEASES.c.id == result.inserted_primary_key[0])).one()
        self._from_db_object(self._context, self, row)

    @base.remotable
    def renew(self, now: int, seconds: int) -> int:
        """Extend the lease to ``now + seconds``; returns the new expiry."""
        expires = now + seconds
        with db.writer.using(self._context) as session:
            session.execute(sa.update(LEASES).where(LEASES.c.id == self.id)
                            .values(expires_at=expires))
        self.expires_at = expires
        self.obj_reset_changes(["expires_at"])
        return expires

    @base.remotable
    def destroy(self) -> None:
        """Release this lease (its row goes)."""
        with db.writer.using(self._context) as session:
            session.execute(sa.delete(LEASES).where(LEASES.c.id == self.id))

    @classmethod
    @base.remotable
    @db.reader
    def get_by_ip(cls, context: Any, ip: str) -> Lease:
        """The lease of ``ip``; raises ``LeaseNotFound``."""
        row = context.session.execute(
            sa.select(LEASES).where(LEASES.c.ip == str(ip))).first()
        if row is None:
            raise exception.LeaseNotFound(ip=str(ip))
        return cls.obj_from_db(context, row)


@APP.register
class LeaseList(base.ObjectListBase):
    # Version 1.0: Lease 1.0
    # Version 1.1: Lease 1.1
    # Version 1.2: Lease 1.2
    VERSION = "1.2"
    fields = {"objects": fields.ListOfObjectsField("Lease")}
    child_versions = {"1.0": "1.0", "1.1": "1.1", "1.2": "1.2"}

    objects: list[Lease]

    @classmethod
    @base.remotable
    @db.reader
    def get_by_subnet(cls, context: Any, cidr: str) -> LeaseList:
        """The leases of the subnet ``cidr``, by address."""
        rows = context.session.execute(
            sa.select(LEASES).where(LEASES.c.subnet_cidr == str(cidr))
            .order_by(LEASES.c.ip))
        return cls.obj_from_db(context, rows)
