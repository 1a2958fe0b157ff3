"""Keys: canonical host names, key files, and which key signs what.

A deployment has one **master key** (``novalet-manage auth init``; several
during a rotation, the first one signing). Every other key derives from it,
so conductors need the master key file alone and ``auth host-key`` needs no
state of its own:

* a host's key: ``HMAC-SHA256(master, "novalet-host-key\\0" + host)``, in
  that host's ``[auth] key_file``;
* the admin key: ``HMAC-SHA256(master, "novalet-admin-key")``, never written
  anywhere: only master key holders sign as the admin.

A request to the conductor topic is signed with the signer's own key (its
host's, or the admin key). An admin request to one compute (a topic other
than the conductor's, with a server) is signed with **that compute's host
key**: the compute holds nothing else, and that signature is good for that
server only (the topic and server are signed too).

Key ids name the master key a key derives from (rotation). Key files are
JSON, written with mode 0600 and refused when group or others may read them.

Host names are canonical or refused (never folded): lower-case ASCII
letters, digits and ``-`` in dot-separated labels of 1 to 63 characters, at
most 253 in all. The same rule applies wherever rows are scoped to a host.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from typing import Any

from novalet import exception
from novalet.auth import principal as principal_mod
from novalet.auth.principal import Principal

MASTER = "master"
HOST = "host"

#: Bytes of every key.
KEY_BYTES = 32

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(r"%s(?:\.%s)*" % (_LABEL, _LABEL))


def canonical_host(name: Any) -> str:
    """``name`` if it is a canonical host name; raises ``InvalidHostName``
    otherwise (case, spaces, NUL, non-ASCII look-alikes are not folded:
    they are refused)."""
    if not isinstance(name, str):
        raise exception.InvalidHostName(host=repr(name), reason="not a string")
    if not name or len(name) > 253:
        raise exception.InvalidHostName(host=name,
                                        reason="empty or longer than 253")
    if not name.isascii():
        raise exception.InvalidHostName(host=name, reason="not ASCII")
    if _HOSTNAME.fullmatch(name) is None:
        reason = ("upper-case letters" if name.lower() != name
                  and _HOSTNAME.fullmatch(name.lower()) else
                  "a character or label that is not allowed")
        raise exception.InvalidHostName(host=name, reason=reason)
    return name


def is_canonical_host(name: Any) -> bool:
    try:
        canonical_host(name)
    except exception.InvalidHostName:
        return False
    return True


@functools.lru_cache(maxsize=8192)
def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.new(secret, label, hashlib.sha256).digest()


def host_key(master: bytes, host: str) -> bytes:
    """The key of ``host`` (canonical) under the master key ``master``."""
    return _derive(master, b"novalet-host-key\0" + canonical_host(host).encode())


def admin_key(master: bytes) -> bytes:
    return _derive(master, b"novalet-admin-key")


def new_key_id() -> str:
    return secrets.token_hex(4)


# -- files ---------------------------------------------------------------------

def _encode(secret: bytes) -> str:
    return base64.b64encode(secret).decode()


def _decode(path: str, text: Any) -> bytes:
    try:
        secret = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise exception.AuthKeyError(path=path, reason="a key is not base64")
    if len(secret) != KEY_BYTES:
        raise exception.AuthKeyError(
            path=path, reason="a key is %d bytes, not %d" % (len(secret),
                                                             KEY_BYTES))
    return secret


def make_private_dirs(directory: str) -> None:
    """Create ``directory`` and every missing parent with mode 0700 (whatever
    the umask: each is made 0700 and set so); existing ones are left as
    they are."""
    missing = []
    current = os.path.abspath(directory)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
            continue
        os.chmod(path, 0o700)


def write_file(path: str, content: dict[str, Any], *,
               replace: bool = False) -> None:
    """Write ``content`` as JSON to a new file of mode 0600 (``replace``: the
    file may exist; it is replaced atomically). Raises ``AuthKeyError``."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        make_private_dirs(directory)
        if not replace and os.path.lexists(path):
            raise exception.AuthKeyError(path=path, reason="exists already")
        tmp = "%s.%s.tmp" % (path, secrets.token_hex(4))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(content, f, indent=1)
                f.write("\n")
            if replace:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # fails if the file appeared meanwhile
                os.unlink(tmp)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except FileExistsError:
        raise exception.AuthKeyError(path=path, reason="exists already")
    except OSError as e:
        raise exception.AuthKeyError(path=path, reason=e.strerror or e)


def read_file(path: str, kind: str) -> dict[str, Any]:
    """The key file ``path`` of ``kind`` (master or host), checked: mode
    (no access for group or others), format, keys. Raises ``AuthKeyError``."""
    try:
        with open(path) as f:
            mode = os.fstat(f.fileno()).st_mode
            text = f.read(1 << 20)
    except OSError as e:
        raise exception.AuthKeyError(path=path, reason=e.strerror or e)
    if stat.S_IMODE(mode) & 0o077:
        raise exception.AuthKeyError(
            path=path, reason="group or others may access it (mode %04o); "
            "run chmod 600 %s" % (stat.S_IMODE(mode), path))
    try:
        content = json.loads(text)
    except ValueError:
        raise exception.AuthKeyError(path=path, reason="not a novalet key file "
                                     "(not JSON)")
    if not isinstance(content, dict) or content.get("novalet_key") != kind:
        raise exception.AuthKeyError(path=path, reason="not a novalet %s key "
                                     "file" % kind)
    keys = content.get("keys")
    if not isinstance(keys, list) or not keys:
        raise exception.AuthKeyError(path=path, reason="holds no key")
    parsed = []
    for entry in keys:
        if (not isinstance(entry, dict) or not isinstance(entry.get("id"), str)
                or not entry["id"] or len(entry["id"]) > 64):
            raise exception.AuthKeyError(path=path, reason="a key has no id")
        parsed.append((entry["id"], _decode(path, entry.get("secret"))))
    if len({key_id for key_id, _ in parsed}) != len(parsed):
        raise exception.AuthKeyError(path=path, reason="two keys share an id")
    content["keys"] = parsed
    if kind == HOST:
        try:
            content["host"] = canonical_host(content.get("host"))
        except exception.InvalidHostName as e:
            raise exception.AuthKeyError(path=path, reason=e.message)
    return content


def master_content(keys: list[tuple[str, bytes]]) -> dict[str, Any]:
    return {"novalet_key": MASTER,
            "keys": [{"id": key_id, "secret": _encode(secret)}
                     for key_id, secret in keys]}


def init_master(path: str, *, rotate: bool = False) -> str:
    """Write a new master key file at ``path`` (``rotate``: add a new key,
    which signs from now on, in front of the file's keys); returns the new
    key's id. Raises ``AuthKeyError``."""
    keys: list[tuple[str, bytes]] = []
    if rotate:
        keys = read_file(path, MASTER)["keys"]
    key_id = new_key_id()
    while key_id in {k for k, _ in keys}:
        key_id = new_key_id()
    write_file(path, master_content([(key_id, secrets.token_bytes(KEY_BYTES)),
                                     *keys]), replace=rotate)
    return key_id


def retire_master(path: str, key_id: str) -> None:
    """Remove the key ``key_id`` from the master key file (not the last one)."""
    keys = read_file(path, MASTER)["keys"]
    left = [(k, s) for k, s in keys if k != key_id]
    if len(left) == len(keys):
        raise exception.AuthKeyError(path=path, reason="no key %s" % key_id)
    if not left:
        raise exception.AuthKeyError(path=path, reason="%s is its only key"
                                     % key_id)
    write_file(path, master_content(left), replace=True)


def write_host_key(master_path: str, host: str, output: str) -> list[str]:
    """Write ``host``'s key file (every master key's derivation, the signing
    one first) to ``output``; returns the key ids. Raises ``AuthKeyError``,
    ``InvalidHostName``."""
    host = canonical_host(host)
    keys = read_file(master_path, MASTER)["keys"]
    write_file(output, {
        "novalet_key": HOST, "host": host,
        "keys": [{"id": key_id, "secret": _encode(host_key(secret, host))}
                 for key_id, secret in keys]})
    return [key_id for key_id, _ in keys]


# -- key rings -------------------------------------------------------------------

class KeyRing:
    """The keys one process holds: the master keys, or one host's keys.

    ``signing(topic, server)`` says who this process signs as and with which
    key; ``verifying(key_id, principal, topic, server)`` finds the key a
    received signature must verify with (None: this process cannot verify
    it, e.g. a compute asked about another host).
    """

    def __init__(self, *, master: list[tuple[str, bytes]] | None = None,
                 host: str | None = None,
                 host_keys: list[tuple[str, bytes]] | None = None,
                 conductor_topic: str = "conductor") -> None:
        if not master and not (host and host_keys):
            raise ValueError("a key ring needs master keys or a host's keys")
        self.master = dict(master or [])
        self.master_order = [k for k, _ in master or []]
        self.host = host
        self.host_keys = dict(host_keys or [])
        self.host_order = [k for k, _ in host_keys or []]
        self.conductor_topic = conductor_topic
        self.principal = (principal_mod.host(host) if host and host_keys
                          else principal_mod.admin())

    @classmethod
    def from_files(cls, master_key_file: str | None, key_file: str | None,
                   conductor_topic: str) -> KeyRing | None:
        """The ring of a process configured with these files (None: none)."""
        master = host_file = None
        if master_key_file:
            master = read_file(master_key_file, MASTER)["keys"]
        if key_file:
            host_file = read_file(key_file, HOST)
        if master is None and host_file is None:
            return None
        return cls(master=master,
                   host=host_file["host"] if host_file else None,
                   host_keys=host_file["keys"] if host_file else None,
                   conductor_topic=conductor_topic)

    def _to_one_compute(self, topic: str, server: str | None) -> bool:
        return server is not None and topic != self.conductor_topic

    def signing(self, topic: str, server: str | None
                ) -> tuple[Principal, str, bytes]:
        """(principal, key id, key) to sign a request to ``topic``/``server``.
        Raises ``InvalidHostName`` for an admin request to a server whose
        name is not canonical (it can hold no key)."""
        if self.principal.kind == principal_mod.HOST:
            key_id = self.host_order[0]
            return self.principal, key_id, self.host_keys[key_id]
        key_id = self.master_order[0]
        secret = self.master[key_id]
        if self._to_one_compute(topic, server):
            assert server is not None
            return self.principal, key_id, host_key(secret, server)
        return self.principal, key_id, admin_key(secret)

    def verifying(self, key_id: str, principal: Principal, topic: str,
                  server: str | None) -> bytes | None:
        """The key a signature by ``principal`` with ``key_id`` on a request
        to ``topic``/``server`` must verify with, or None."""
        secret = self.master.get(key_id)
        if secret is not None:
            if principal.kind == principal_mod.HOST:
                assert principal.host is not None
                return host_key(secret, principal.host)
            if self._to_one_compute(topic, server):
                assert server is not None
                return host_key(secret, server)
            return admin_key(secret)
        own = self.host_keys.get(key_id)
        if own is None:
            return None
        if principal.kind == principal_mod.HOST and principal.host == self.host:
            return own
        if (principal.is_admin and server == self.host
                and self._to_one_compute(topic, server)):
            return own
        return None
