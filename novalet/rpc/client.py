"""RPC clients: calls and casts on one topic, signed when this process
holds a key, with oslo.messaging's errors turned into novalet's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kombu.exceptions
import oslo_messaging as messaging
from oslo_config import cfg

from novalet import auth, exception
from novalet.rpc import serializer, transport


def send_retries(conf: Any, timeout: float) -> int | None:
    """How many reconnect attempts a call may make to *send* within
    ``timeout`` seconds (oslo.messaging's ``retry``; None: no limit).

    oslo.messaging bounds only the wait for the reply by the timeout; with
    every broker node down, sending retries forever (``retry=None``) and the
    call hangs. The rabbit driver sleeps ``kombu_reconnect_delay`` plus
    ``rabbit_retry_interval`` (growing by ``rabbit_retry_backoff`` up to
    ``rabbit_interval_max``) between attempts: this counts the attempts whose
    sleeps fit in ``timeout``, at least one.
    """
    try:
        if messaging.TransportURL.parse(
                conf, conf.transport_url).transport != "rabbit":
            return None
        rabbit = conf.oslo_messaging_rabbit
        delay = float(rabbit.kombu_reconnect_delay)
        interval = float(rabbit.rabbit_retry_interval)
        step = float(rabbit.rabbit_retry_backoff)
        longest = float(rabbit.rabbit_interval_max)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError,
            messaging.InvalidTransportURL):
        return None
    attempts, slept = 0, 0.0
    while attempts < 1000:
        slept += delay + min(interval + attempts * step, longest)
        if slept > timeout:
            break
        attempts += 1
    return max(1, attempts)


#: Errors a server sends before it has verified the request, so without a
#: MAC even to a call that asked for one: they say only that the call
#: failed, and are passed on as they are.
_UNSEALABLE = (exception.SignatureRefused, exception.MalformedRequest)


def _unknown() -> bool:
    """Whether the servers seal their replies: not known."""
    return False


class _Prepared:
    """One oslo.messaging client (one version cap) and what was prepared
    from it: replaced as a whole when the cap changes, so a call never
    mixes the old cap's answers with the new client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.conf = client.transport.conf
        self.contexts: dict[tuple[Any, ...], Any] = {}
        self.sendable: dict[str, bool] = {}

    def context(self, version: str | None, server: str | None,
                timeout: float | None) -> Any:
        key = (version, server, timeout)
        prepared = self.contexts.get(key)
        if prepared is None:
            if len(self.contexts) >= 64:  # a few (version, server, timeout)
                self.contexts.clear()     # are in use; never unbounded
            kwargs: dict[str, Any] = {}
            if version is not None:
                kwargs["version"] = version
            if server is not None:
                kwargs["server"] = server
            if timeout is not None:
                kwargs["timeout"] = timeout
            retry = send_retries(
                self.conf, timeout or self.client.timeout
                or self.conf.rpc_response_timeout)
            if retry is not None:
                kwargs["retry"] = retry
            prepared = self.contexts[key] = (
                self.client.prepare(**kwargs) if kwargs else self.client)
        return prepared

    def can_send_version(self, version: str) -> bool:
        # oslo.messaging prepares a new call context to answer.
        sendable = self.sendable.get(version)
        if sendable is None:
            sendable = self.sendable[version] = bool(
                self.client.can_send_version(version))
        return sendable


class Client:
    """An RPC client for one topic; oslo.messaging errors leave as novalet ones.

    ``entities`` serializes what the calls carry (novalet's clients pass the
    objects' serializer); a call waits what its ``timeout`` argument says,
    else its context's ``call_timeout``, else this client's ``timeout``,
    else ``rpc_response_timeout``.

    A signed call's reply must be sealed (``novalet.auth.signing``); with
    ``[auth] require_reply_auth`` false an unsealed one is accepted too,
    but only while the version caps do not say that every server of the
    topic seals its replies (``expect_sealed_replies``).
    """

    def __init__(self, topic: str, version: str, *, server: str | None = None,
                 version_cap: str | None = None,
                 timeout: float | None = None,
                 entities: messaging.Serializer | None = None) -> None:
        self.topic = topic
        self.timeout = timeout
        self._target = messaging.Target(topic=topic, version=version,
                                        server=server)
        self._serializer = serializer.ClientSerializer(entities)
        self._prepared = self._make(version_cap)
        self._peers_seal: Callable[[], bool] = _unknown

    def expect_sealed_replies(self, peers_seal: Callable[[], bool]) -> None:
        """``peers_seal()`` says whether every server of this topic is
        known to seal its replies (release 4 or later, as the version caps
        last found or are pinned): then an unsealed reply is refused even
        while ``[auth] require_reply_auth`` is false. Until it is set, and
        while it says False, the option alone decides."""
        self._peers_seal = peers_seal

    def _make(self, version_cap: str | None) -> _Prepared:
        return _Prepared(messaging.get_rpc_client(
            transport.get_transport(), self._target, version_cap=version_cap,
            serializer=self._serializer, timeout=self.timeout))

    def _sign(self, ctxt: Any, method: str, version: str | None,
              server: str | None, kwargs: dict[str, Any], *,
              call: bool = False) -> tuple[Any, dict[str, Any]]:
        """The context and arguments to hand oslo.messaging: as they are
        when this process does not sign, else their signed wire form. A
        signed ``call`` over a real transport asks for an authenticated
        reply (``novalet.auth.signing``): its context says so, signed, and
        the ``Signed`` context carries what checks the reply."""
        signer = auth.signer()
        if signer is None:
            return ctxt, kwargs
        ser = self._serializer
        wire_ctxt = auth.signing.wire_form(ser.serialize_context(ctxt))
        wire_args = auth.signing.wire_form(
            {k: ser.serialize_entity(ctxt, v) for k, v in kwargs.items()})
        sealed = call and not transport.in_process()
        if sealed:
            wire_ctxt[auth.signing.REPLY_FIELD] = auth.signing.REPLY_VERSION
        to = server if server is not None else self._target.server
        fields = wire_ctxt[auth.signing.FIELD] = signer.sign(
            method=method, version=version or self._target.version,
            namespace=self._target.namespace, topic=self.topic,
            server=to, args=wire_args, context=wire_ctxt)
        reply = None
        if sealed:
            reply = serializer.ExpectedReply(
                signer.key(self.topic, to), fields["n"], self.topic, method,
                plain_allowed=(not self._prepared.conf.auth.require_reply_auth
                               and not self._peers_seal()))
        return serializer.Signed(ctxt, wire_ctxt, reply), wire_args

    @property
    def version_cap(self) -> str | None:
        return self._prepared.client.version_cap  # type: ignore[no-any-return]

    def set_version_cap(self, version_cap: str | None) -> None:
        """Change the cap (rolling upgrades: the peers' versions changed)."""
        if version_cap != self.version_cap:
            self._prepared = self._make(version_cap)

    def can_send_version(self, version: str) -> bool:
        return self._prepared.can_send_version(version)

    def call(self, ctxt: Any, method: str, *, version: str | None = None,
             server: str | None = None, timeout: float | None = None,
             **kwargs: Any) -> Any:
        """Call ``method`` and return its result. Raises what the server
        raised (see ``errors``), ``RPCTimeout``, ``RPCUnavailable``, and
        ``ReplyRefused`` for a reply not authenticated for this call."""
        if timeout is None:
            timeout = getattr(ctxt, "call_timeout", None)
        cctxt = self._prepared.context(version, server, timeout)
        ctxt, kwargs = self._sign(ctxt, method, version, server, kwargs,
                                  call=True)
        expected = ctxt.reply if type(ctxt) is serializer.Signed else None
        sealed: BaseException | None = None
        try:
            result = cctxt.call(ctxt, method, **kwargs)
            if type(result) is serializer.RemoteFailure:
                sealed = result.error
                raise sealed
            return result
        except messaging.MessagingTimeout:
            raise exception.RPCTimeout(topic=self.topic, method=method,
                                       timeout=timeout or self.timeout)
        except (messaging.MessageDeliveryFailure,
                kombu.exceptions.OperationalError) as e:
            # (kombu's: a new pooled connection that could not be made within
            # the call's bounded send retries, see send_retries)
            raise exception.RPCUnavailable(topic=self.topic, method=method,
                                           reason=e)
        except exception.ReplyRefused:
            raise
        except (messaging.RemoteError, exception.NovaletException) as e:
            if expected is not None and e is not sealed:
                # A failure oslo.messaging delivered without a MAC: the
                # refusal of a request that did not verify carries none
                # (it says only that the call failed); anything else is
                # a release 3 server's, or forged.
                if not isinstance(e, _UNSEALABLE):
                    expected.plain("an error (%s)" % type(e).__name__)
            if isinstance(e, messaging.RemoteError) and (
                    e.exc_type == "UnsupportedVersion"):
                # The server's dispatcher refused the version before any
                # endpoint saw the call: nothing ran.
                raise exception.UnsupportedRPCVersion(
                    topic=self.topic, method=method,
                    version=version or self._target.version)
            raise

    def cast(self, ctxt: Any, method: str, *, version: str | None = None,
             server: str | None = None, **kwargs: Any) -> None:
        cctxt = self._prepared.context(version, server, None)
        ctxt, kwargs = self._sign(ctxt, method, version, server, kwargs)
        try:
            cctxt.cast(ctxt, method, **kwargs)
        except (messaging.MessageDeliveryFailure,
                kombu.exceptions.OperationalError) as e:
            raise exception.RPCUnavailable(topic=self.topic, method=method,
                                           reason=e)
