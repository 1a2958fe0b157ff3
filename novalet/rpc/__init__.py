"""The one package that knows oslo.messaging. It imports no object,
conductor, compute or metrics module: callers hand it the serializer of
what their calls carry and an observer of what their servers receive.

* ``transport``: the process's transport (``[DEFAULT] transport_url``);
* ``serializer``: the request context on the wire, and the verified one;
* ``client``: ``Client`` (calls and casts, signed when this process holds a
  key; a timeout or an undeliverable call leaves as ``RPCTimeout`` /
  ``RPCUnavailable``);
* ``server``: ``Server`` (endpoints of ``@expose``d methods on the threading
  executor; every request verified by ``novalet.auth`` before any argument
  is rebuilt: a wrapper of the dispatcher through ``get_rpc_server``'s
  public ``server_cls``);
* ``errors``: how errors cross: a ``novalet.exception`` error (or one of a
  loaded app's declared ``exceptions`` modules) raised by a server is
  re-raised by the caller as the same class; anything else,
  Python's builtins included, arrives as ``oslo_messaging.RemoteError``;
* ``startup``: the start-up checks of the transport.

Signing: the client serializes the arguments and the context itself, signs
them as they travel, and hands oslo.messaging their wire form
(``serializer.Signed``), which its serializer passes through. A signed call
over a real transport asks for an authenticated reply; the client's
serializer opens it before anything in it is rebuilt
(``serializer.ExpectedReply``), a reply that does not verify is
``ReplyRefused``.

* ``replies``: reply queues named after their host and binary
  (``reply_<host>:<binary>:...``) and the pattern ``auth rabbitmq`` grants.
"""

from __future__ import annotations

from novalet.rpc import errors
from novalet.rpc.client import (  # the package's public names
    Client as Client,
)
from novalet.rpc.client import (
    send_retries as send_retries,
)
from novalet.rpc.errors import (
    errors_as_on_the_wire as errors_as_on_the_wire,
)
from novalet.rpc.errors import (
    remote_form as remote_form,
)
from novalet.rpc.errors import (
    wire_roundtrip as wire_roundtrip,
)
from novalet.rpc.serializer import (
    RequestContextSerializer as RequestContextSerializer,
)
from novalet.rpc.server import (
    Observer as Observer,
)
from novalet.rpc.server import (
    Server as Server,
)
from novalet.rpc.server import (
    endpoint_target as endpoint_target,
)
from novalet.rpc.server import (
    expose as expose,
)
from novalet.rpc.startup import (
    STARTUP_CHECK_TOPIC as STARTUP_CHECK_TOPIC,
)
from novalet.rpc.startup import (
    check_auth as check_auth,
)
from novalet.rpc.startup import (
    check_broker as check_broker,
)
from novalet.rpc.startup import (
    is_in_process as is_in_process,
)
from novalet.rpc.startup import (
    masked_transport_url as masked_transport_url,
)
from novalet.rpc.startup import (
    url_host as url_host,
)
from novalet.rpc.transport import (
    cleanup as cleanup,
)
from novalet.rpc.transport import (
    get_transport as get_transport,
)
from novalet.rpc.transport import (
    init as init,
)

ALLOWED_EXMODS = errors.ALLOWED_EXMODS
