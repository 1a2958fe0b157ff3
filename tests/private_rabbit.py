"""A private RabbitMQ node for tests that need a broker of their own (TLS,
one to stop or break), never the machine's shared one.

Everything belongs to the node: its name (``novalet-<tag>-<pid>-<random>@
localhost``), its AMQP (and optional TLS) listeners on free loopback ports,
its Erlang distribution port, its data, logs and configuration files in one
temporary directory, its Erlang cookie (a private ``HOME`` plus
``-setcookie``), no plugins (so no management listener). The machine's
``/etc/rabbitmq`` files are not read. ``stop()`` stops the node and removes
its directory; it is safe to call twice and after a failed ``start()``.

    node = PrivateRabbitNode(tls=TLSFiles.make(directory))
    node.start()
    node.url        # rabbit://guest:guest@127.0.0.1:<port>/ (TLS port if tls)
    node.ports      # {"amqp": ..., "amqps": ..., "dist": ...}
    node.stop()
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

#: The real scripts (Debian's /usr/sbin wrappers switch to the rabbitmq
#: user and the shared node's files).
RABBIT_BIN = os.environ.get("NOVALET_TEST_RABBIT_BIN", "/usr/lib/rabbitmq/bin")


class PrivateRabbitUnavailable(Exception):
    """RabbitMQ is not installed, or the private node did not start."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class TLSFiles:
    """A self-signed CA and a server certificate it signed (for
    ``localhost`` and 127.0.0.1), as PEM files."""

    ca_file: str
    cert_file: str
    key_file: str

    @classmethod
    def make(cls, directory: str) -> TLSFiles:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        validity = (now - datetime.timedelta(minutes=5),
                    now + datetime.timedelta(days=1))

        def name(common: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder()
              .subject_name(name("novalet test CA"))
              .issuer_name(name("novalet test CA"))
              .public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(validity[0]).not_valid_after(validity[1])
              .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                             critical=True)
              .add_extension(x509.KeyUsage(
                  digital_signature=True, key_cert_sign=True, crl_sign=True,
                  content_commitment=False, key_encipherment=False,
                  data_encipherment=False, key_agreement=False,
                  encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                  ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(name("localhost"))
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(validity[0]).not_valid_after(validity[1])
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                    critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage(
                    [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        files = cls(os.path.join(directory, "ca.pem"),
                    os.path.join(directory, "server.pem"),
                    os.path.join(directory, "server.key"))
        pem = serialization.Encoding.PEM
        with open(files.ca_file, "wb") as f:
            f.write(ca.public_bytes(pem))
        with open(files.cert_file, "wb") as f:
            f.write(cert.public_bytes(pem))
        with open(os.open(files.key_file, os.O_WRONLY | os.O_CREAT, 0o600),
                  "wb") as f:
            f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return files


class PrivateRabbitNode:
    """One RabbitMQ node of this test run's own (see the module docstring).

    ``tcp``: a plain AMQP listener; ``tls``: an AMQPS listener with these
    certificates (at least one of the two). ``tag`` goes into the node name.
    """

    def __init__(self, *, tcp: bool = True, tls: TLSFiles | None = None,
                 tag: str = "test", start_timeout: float = 120) -> None:
        if not tcp and tls is None:
            raise ValueError("a node needs a TCP or a TLS listener")
        self.tls = tls
        self.start_timeout = start_timeout
        self.nodename = "novalet-%s-%d-%s@localhost" % (
            tag, os.getpid(), secrets.token_hex(3))
        self.ports: dict[str, int] = {"dist": free_port()}
        if tcp:
            self.ports["amqp"] = free_port()
        if tls is not None:
            self.ports["amqps"] = free_port()
        self.directory = tempfile.mkdtemp(prefix="novalet-rabbit-")
        self._cookie = secrets.token_hex(16)
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses ------------------------------------------------------------

    @property
    def port(self) -> int:
        """The AMQP port clients use: the TLS one if the node has TLS."""
        return self.ports["amqps"] if "amqps" in self.ports else self.ports["amqp"]

    @property
    def url(self) -> str:
        """``rabbit://guest:guest@127.0.0.1:<port>/`` (the default vhost)."""
        return "rabbit://guest:guest@127.0.0.1:%d/" % self.port

    def __repr__(self) -> str:
        return "<PrivateRabbitNode %s %s>" % (self.nodename, self.ports)

    # -- files and environment -----------------------------------------------

    def _path(self, *parts: str) -> str:
        return os.path.join(self.directory, *parts)

    def _write_files(self) -> None:
        for sub in ("home", "mnesia", "log"):
            os.makedirs(self._path(sub), exist_ok=True)
        lines = ["loopback_users.guest = true",
                 "log.console = false",
                 "log.file.level = info"]
        if "amqp" in self.ports:
            lines.append("listeners.tcp.1 = 127.0.0.1:%d" % self.ports["amqp"])
        else:
            lines.append("listeners.tcp = none")
        if self.tls is not None:
            lines += ["listeners.ssl.1 = 127.0.0.1:%d" % self.ports["amqps"],
                      "ssl_options.cacertfile = %s" % self.tls.ca_file,
                      "ssl_options.certfile = %s" % self.tls.cert_file,
                      "ssl_options.keyfile = %s" % self.tls.key_file,
                      "ssl_options.verify = verify_none",
                      "ssl_options.fail_if_no_peer_cert = false"]
        with open(self._path("rabbitmq.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(self._path("enabled_plugins"), "w") as f:
            f.write("[].\n")
        open(self._path("rabbitmq-env.conf"), "w").close()
        cookie = self._path("home", ".erlang.cookie")
        with open(os.open(cookie, os.O_WRONLY | os.O_CREAT, 0o400), "w") as f:
            f.write(self._cookie)

    def env(self) -> dict[str, str]:
        """The environment of the node's scripts (server and rabbitmqctl)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_"))}
        erl_args = "-setcookie %s" % self._cookie
        env.update({
            "HOME": self._path("home"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.ports.get("amqp", self.port)),
            "RABBITMQ_DIST_PORT": str(self.ports["dist"]),
            "RABBITMQ_CONFIG_FILE": self._path("rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": self._path("advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": self._path("rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": self._path("enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": self._path("mnesia"),
            "RABBITMQ_LOG_BASE": self._path("log"),
            "RABBITMQ_PID_FILE": self._path("rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                erl_args + " -kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CTL_ERL_ARGS": erl_args,
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        return env

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n NODE ARGS`` against this node only."""
        return subprocess.run(
            [os.path.join(RABBIT_BIN, "rabbitmqctl"), "-n", self.nodename, *args],
            env=self.env(), capture_output=True, text=True, timeout=timeout)

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the node and wait until it accepts connections; raises
        ``PrivateRabbitUnavailable`` (the node stopped again) if it does not."""
        server = os.path.join(RABBIT_BIN, "rabbitmq-server")
        if not os.access(server, os.X_OK):
            raise PrivateRabbitUnavailable("%s not found" % server)
        self._write_files()
        log = open(self._path("server.out"), "wb")
        try:
            self._proc = subprocess.Popen(
                [server], env=self.env(), cwd=self.directory, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            log.close()
        try:
            self._await_startup()
        except BaseException:
            self.stop()
            raise

    def _await_startup(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PrivateRabbitUnavailable(
                    "%s exited (%s) at start: %s" % (
                        self.nodename, self._proc.returncode, self.output()))
            remaining = max(5, int(deadline - time.monotonic()))
            result = self.ctl("await_startup", "--timeout", str(remaining),
                              timeout=remaining + 30)
            if result.returncode == 0 and self._listening():
                return
            last = (result.stderr or result.stdout).strip()
            time.sleep(0.5)
        raise PrivateRabbitUnavailable("%s did not start within %ss: %s\n%s" % (
            self.nodename, self.start_timeout, last, self.output()))

    def _listening(self) -> bool:
        for name in ("amqp", "amqps"):
            if name in self.ports:
                try:
                    socket.create_connection(("127.0.0.1", self.ports[name]),
                                             timeout=2).close()
                except OSError:
                    return False
        return True

    def output(self, limit: int = 4000) -> str:
        """The end of the server's console output and log (for failures)."""
        text = ""
        logs = self._path("log")
        names = sorted(os.listdir(logs)) if os.path.isdir(logs) else []
        for path in [self._path("server.out")] + [
                os.path.join(logs, name) for name in names]:
            try:
                with open(path, errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text[-limit:]

    def stop(self) -> None:
        """Stop the node (``rabbitmqctl stop``, then SIGTERM/SIGKILL of its
        process group) and remove its files."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                self.ctl("stop", timeout=60)
            except (subprocess.TimeoutExpired, OSError):
                pass
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    pass
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivateRabbitNode:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
