"""A small TCP proxy on 127.0.0.1 that can add latency or become a black hole
(this kernel has no netem): the fault suite puts one between a compute and
each broker node."""

from __future__ import annotations

import collections
import select
import socket
import threading
import time

_CHUNK = 65536


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_port``.

    ``delay`` (seconds) holds every chunk that long before passing it on, in
    both directions. ``blackhole()`` stops forwarding on every connection,
    old and new (bytes stay unread, as on a link that drops every packet;
    the peers notice only through their own timeouts); ``heal()`` resumes.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.delay = 0.0
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name="tcp-proxy-%d" % self.port)
        thread.start()
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def blackhole(self) -> None:
        self._flowing.clear()

    def heal(self) -> None:
        self.delay = 0.0
        self._flowing.set()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.2)
                if not ready:
                    continue
                client, _ = self._listener.accept()
            except (OSError, ValueError):
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        pending: collections.deque[tuple[float, bytes]] = collections.deque()
        eof = False
        try:
            while not self._closed.is_set():
                if not self._flowing.is_set():
                    self._flowing.wait(0.2)
                    continue
                now = time.monotonic()
                while pending and pending[0][0] <= now:
                    dst.sendall(pending.popleft()[1])
                if eof and not pending:
                    break
                wait = 0.2 if not pending else max(0.0, pending[0][0] - now)
                if eof:
                    time.sleep(wait)
                    continue
                ready, _, _ = select.select([src], [], [], wait)
                if ready:
                    data = src.recv(_CHUNK)
                    if not data:
                        eof = True
                        continue
                    if self.delay > 0 or pending:
                        pending.append((time.monotonic() + self.delay, data))
                    else:
                        dst.sendall(data)
        except (OSError, ValueError):  # ValueError: the other side closed it
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)
