"""The leases app, as novalet loads it (entry point novalet.apps: leases)."""

from novalet import app

APP = app.App(
    name="leases",
    object_modules=["leases.objects"],
    migrations="leases.db:migrations",
    exceptions=["leases.exception"],
    releases={
        "1": {"Subnet": "1.0", "Lease": "1.0", "LeaseList": "1.0"},
        "2": {"Subnet": "1.0", "Lease": "1.1", "LeaseList": "1.1"},
        "3": {"Subnet": "1.0", "Lease": "1.2", "LeaseList": "1.2"},
    },
    # An agent signed as a host writes only the leases it handed out.
    host_scoped={"leases": "host"},
)
