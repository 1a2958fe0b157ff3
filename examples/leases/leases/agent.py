"""``leases-agent``: a DHCP agent with no database access. It hands out
one lease and renews it through ``novalet-conductor`` (``[objects]
indirection = rpc``), then prints what it holds as one JSON line.

    leases-agent --config-file novalet.conf IP MAC CIDR GATEWAY
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import novalet  # noqa: F401  (selects oslo.service's threading backend first)
from novalet import conf as novalet_conf
from novalet import context, db, exception, indirection, objects


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    config, positional = args[:2], args[2:]
    if len(positional) != 4:
        print("usage: leases-agent --config-file FILE IP MAC CIDR GATEWAY",
              file=sys.stderr)
        return 2
    novalet_conf.parse_args(config, prog="leases-agent")
    try:
        objects.register_all()
    except exception.AppLoadError as e:
        print("leases-agent: cannot start: %s" % e, file=sys.stderr)
        return 1
    from leases import objects as lease_objects

    novalet_conf.CONF.set_override("indirection", "rpc", "objects")
    indirection.configure(novalet_conf.CONF, binary="leases-agent")
    assert db.access_blocked()  # everything below goes through the conductor
    ip, mac, cidr, gateway = positional
    ctxt = context.get_admin_context()
    now = int(time.time())
    lease = lease_objects.Lease(ctxt, ip=ip, mac=mac, hostname="agent-host",
                                client_id="client-%s" % mac, expires_at=now + 60,
                                host=novalet_conf.CONF.host,
                                subnet=lease_objects.Subnet(cidr=cidr, gateway=gateway))
    lease.create()
    lease.renew(now, 3600)
    held = lease_objects.LeaseList.get_by_subnet(ctxt, cidr)
    print(json.dumps({"id": lease.id, "expires_at": lease.expires_at,
                      "subnet": [str(x.ip) for x in held],
                      "client_id": lease_objects.Lease.get_by_ip(ctxt, ip).client_id}))
    indirection.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
