"""The leases app's errors. Declared in ``App(exceptions=[...])``
(``leases.novalet_app``), so a remotable method that raises one on the
conductor raises the same class, message and kwargs in the caller."""

from __future__ import annotations

from novalet import exception


class IPAlreadyLeased(exception.Conflict):
    """The address is held by another lease."""
    msg_fmt = "%(ip)s is leased already"


class LeaseNotFound(exception.NotFound):
    """No lease holds the address."""
    msg_fmt = "no lease for %(ip)s"
