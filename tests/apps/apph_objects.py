"""Objects of the test app apph: a Part, whose table ``apph_parts`` is
host-scoped by its column ``owner`` (tests/apps/declared.py). Its methods
write with Core statements and with the ORM, and ``whoami`` tells what
``context.principal`` an app's method sees."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from novalet import db
from novalet.objects import base, fields

NAMESPACE = "apph"

PARTS = sa.Table("apph_parts", sa.MetaData(),
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("owner", sa.String(255)),
                 sa.Column("name", sa.String(16)),
                 sa.Column("size", sa.Integer))


class _Base(orm.DeclarativeBase):
    pass


class PartRow(_Base):
    """The ORM's view of a row of ``apph_parts``."""

    __table__ = PARTS


@base.NovaletObjectRegistry.register
class Part(base.NovaletObject):
    OBJ_PROJECT_NAMESPACE = NAMESPACE
    VERSION = "1.0"
    #: Its table: the conductor checks its fields against the columns.
    obj_db_table = PARTS
    fields = {"id": fields.IntegerField(read_only=True),
              "owner": fields.StringField(nullable=True),
              "name": fields.StringField(),
              "size": fields.IntegerField()}

    @base.remotable
    def create(self) -> None:
        """A row (a Core ``INSERT``)."""
        with db.writer.using(self._context) as session:
            result = session.execute(sa.insert(PARTS).values(
                owner=self.owner, name=self.name, size=self.size))
            self.id = int(result.inserted_primary_key[0])
        self.obj_reset_changes()

    @base.remotable
    def create_orm(self) -> None:
        """A row (the ORM's unit of work)."""
        with db.writer.using(self._context) as session:
            row = PartRow(owner=self.owner, name=self.name, size=self.size)
            session.add(row)
            session.flush()
            self.id = row.id
        self.obj_reset_changes()

    @base.remotable
    def rename(self, name: str) -> None:
        """A Core ``UPDATE`` of this row's name."""
        with db.writer.using(self._context) as session:
            session.execute(sa.update(PARTS).where(PARTS.c.id == self.id)
                            .values(name=name))
        self.name = name
        self.obj_reset_changes()

    @base.remotable
    def resize(self, size: Any) -> None:
        """An ORM ``UPDATE`` (load, change, flush) of this row's size; the
        size is not checked here (the database layer checks it)."""
        with db.writer.using(self._context) as session:
            row = session.get(PartRow, self.id)
            row.size = size
            session.flush()

    @base.remotable
    def give_to(self, owner: str) -> None:
        """An ORM bulk ``UPDATE`` of this row's owner."""
        with db.writer.using(self._context) as session:
            session.execute(sa.update(PartRow).where(PartRow.id == self.id)
                            .values(owner=owner))

    @base.remotable
    def destroy(self) -> None:
        """An ORM ``DELETE`` of this row."""
        with db.writer.using(self._context) as session:
            row = session.get(PartRow, self.id)
            if row is not None:
                session.delete(row)
                session.flush()

    @base.remotable
    def destroy_by_text(self) -> None:
        """Text SQL (refused to a host caller: it cannot be scoped)."""
        with db.writer.using(self._context) as session:
            session.execute(sa.text("DELETE FROM apph_parts WHERE id = :i"),
                            {"i": self.id})

    @classmethod
    @base.remotable
    def whoami(cls, context: Any) -> list[str | None]:
        """``[kind, host]`` of ``context.principal``; ``[None, None]`` for
        a local call."""
        principal = context.principal
        if principal is None:
            return [None, None]
        return [principal.kind, principal.host]
