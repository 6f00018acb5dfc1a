"""A small, bounded HTTP/1.1 server for the extender verbs (standard library only).

Shape: one I/O thread owns the listening socket and every idle or half-read connection (a
``selectors`` loop); a fixed pool of worker threads runs the application on complete requests
and writes each response with one ``sendall``. So an idle keep-alive connection costs a socket,
not a thread, and the number of threads never grows with the number of clients.

Contract (each point is tested in ``tests/test_extender_server.py``):

- ``backlog`` (default 1024) is the listen queue: a burst of new connections from
  kube-scheduler's concurrent binds waits there instead of being reset.
- At most ``max_connections`` connections are open; one more is accepted, answered ``503``
  with ``Connection: close`` and closed, so a client sees a clean refusal.
- ``workers`` threads run requests; complete requests beyond them wait in a queue (a
  connection has at most one request there or in a worker, so it never holds more than
  ``max_connections``), and the I/O thread keeps reading the others meanwhile.
- A request must arrive whole (headers and body) within ``read_timeout`` seconds of its first
  byte (else ``408`` and close: a slow client cannot hold a connection); a keep-alive
  connection with no request for ``idle_timeout`` seconds is closed.
- Responses are one write (status line, headers and body together) on a ``TCP_NODELAY``
  socket, so a keep-alive client is never held by Nagle's algorithm.
- Framing errors are ``400`` and close the connection: a malformed request line or header,
  ``Content-Length`` that is not digits or appears twice, ``Content-Length`` together with
  ``Transfer-Encoding``, a transfer coding other than ``chunked``, malformed chunks. A body
  over ``max_body`` is ``413``, headers over ``MAX_HEADER_BYTES`` are ``431``. Messages quote
  at most a short prefix of what was received.

The application is ``app(method, path, body) -> (status, body_bytes)``, called on a worker
thread; an exception it lets escape is logged and answered ``500``.

Why the standard library: the extender serves one client (kube-scheduler) with small JSON
requests, and what it must guarantee -- bounded threads, deadlines, one write per response,
strict framing -- is about 300 lines over ``selectors``. Tornado (already present with the
``distributed`` extra) has the same shape (one I/O loop, keep-alive, body and idle timeouts,
refusal of conflicting ``Content-Length``) but would still need a thread pool for the scoring
calls and a dependency in the core install; waitress (WSGI, also an I/O thread plus a fixed
pool) adds a WSGI layer per request. Neither would remove code here, so the core stays
dependency-free.
"""
from __future__ import annotations

import collections
import logging
import queue
import re
import selectors
import socket
import threading
import time
from http import HTTPStatus

log = logging.getLogger("numasched.extender")

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
QUOTE = 40   # characters of a refused value quoted back in an error message

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_REQUEST_LINE = re.compile(rb"^([A-Z]{1,20}) (\S{1,8192}) HTTP/1\.([01])$")
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,8})(?:;[^\r\n]*)?$")


def short(value, limit: int = QUOTE) -> str:
    """``repr`` of at most ``limit`` characters of ``value`` (bytes are decoded leniently)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[:limit + 1]).decode("utf-8", "replace")
    if not isinstance(value, str):
        text = repr(value)
        return text[:limit] + ("..." if len(text) > limit else "")
    return repr(value[:limit]) + ("..." if len(value) > limit else "")


class HTTPError(Exception):
    """A request refused while it is read (the connection is closed after the answer)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Request:
    __slots__ = ("method", "path", "headers", "body", "keep_alive", "started")

    def __init__(self, method, path, headers, body, keep_alive, started):
        self.method, self.path, self.headers = method, path, headers
        self.body, self.keep_alive, self.started = body, keep_alive, started


def parse_head(head: bytes) -> tuple[str, str, dict, bool]:
    """Request line and headers (without the final blank line) -> method, path, headers
    (lower-case names, each at most once except those joined below), keep-alive."""
    lines = head.split(b"\r\n")
    m = _REQUEST_LINE.match(lines[0])
    if not m:
        raise HTTPError(400, f"malformed request line {short(lines[0])}")
    if len(lines) - 1 > MAX_HEADERS:
        raise HTTPError(431, f"more than {MAX_HEADERS} header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise HTTPError(400, f"malformed header line {short(line)}")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        if key in headers:
            if key in ("content-length", "transfer-encoding", "host"):
                raise HTTPError(400, f"header {name.decode('ascii')} given twice")
            headers[key] += ", " + text
        else:
            headers[key] = text
    minor = m.group(3)
    connection = headers.get("connection", "").lower()
    keep_alive = ("close" not in connection) if minor == b"1" else ("keep-alive" in connection)
    return m.group(1).decode("ascii"), m.group(2).decode("latin-1"), headers, keep_alive


class _Conn:
    """One client connection while the I/O thread owns it."""

    __slots__ = ("sock", "addr", "buf", "head", "need", "chunks", "started", "idle_since",
                 "continued")

    def __init__(self, sock, addr, now):
        self.sock, self.addr = sock, addr
        self.buf = bytearray()
        self.head = None        # (method, path, headers, keep_alive) once the head is read
        self.need = None        # body bytes expected (Content-Length), or None
        self.chunks = None      # chunked decoding state: bytearray of the decoded body
        self.started = None     # monotonic time of this request's first byte
        self.idle_since = now
        self.continued = False  # "100 Continue" sent for this request

    def reset(self, now) -> None:
        self.head = self.need = self.chunks = self.started = None
        self.idle_since, self.continued = now, False


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


def response_bytes(status: int, body: bytes, keep_alive: bool,
                   content_type: str = "application/json") -> bytes:
    """The whole response, status line to body, as one buffer."""
    return b"".join((
        _status_line(status),
        b"Server: numasched-extender\r\nContent-Type: ", content_type.encode("ascii"),
        b"\r\nContent-Length: ", str(len(body)).encode("ascii"),
        b"\r\n" if keep_alive else b"\r\nConnection: close\r\n",
        b"\r\n", body))


def error_body(message: str) -> bytes:
    import json
    return json.dumps({"Error": message}).encode("utf-8")


class Server:
    """The extender's HTTP server; ``serve_forever()`` runs it, ``shutdown()`` stops it.

    ``server_address`` is the bound ``(host, port)`` (port 0 picks a free one). ``access_log``
    is a callable ``(client, method, path, status, bytes_out, seconds)`` called after each
    response, or None.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 8888, *, workers: int = 8,
                 backlog: int = 1024, max_connections: int = 1024, read_timeout: float = 10.0,
                 idle_timeout: float = 90.0, max_body: int = 1 << 20, access_log=None):
        for name, value in (("workers", workers), ("backlog", backlog),
                            ("max_connections", max_connections), ("max_body", max_body)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("read_timeout", read_timeout), ("idle_timeout", idle_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.app = app
        self.workers, self.max_connections = workers, max_connections
        self.read_timeout, self.idle_timeout, self.max_body = read_timeout, idle_timeout, max_body
        self.access_log = access_log
        self.socket = socket.create_server((host, port), backlog=backlog)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]
        self._jobs: queue.Queue = queue.Queue(maxsize=max_connections + 1)
        self._returned: collections.deque = collections.deque()   # connections back from workers
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_sent = False     # a wake-up byte is on its way to the I/O thread
        self._open = 0              # connections open (idle, reading, queued or being served)
        self._open_lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- life cycle -----------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Run until ``shutdown()``: the I/O loop in this thread, the workers in their own."""
        self._threads = [threading.Thread(target=self._worker, name=f"extender-worker-{i}",
                                          daemon=True) for i in range(self.workers)]
        for t in self._threads:
            t.start()
        try:
            self._io_loop()
        finally:
            for _ in self._threads:
                self._jobs.put(None)
            for t in self._threads:
                t.join(timeout=5)
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever()`` and wait for it to return."""
        self._stop.set()
        self._wake()
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        self.socket.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # ---- the I/O thread ---------------------------------------------------------------------
    def _io_loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.socket, selectors.EVENT_READ, None)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        conns: dict[int, _Conn] = {}    # fileno -> connection, those registered with sel
        next_sweep = time.monotonic() + 0.5
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    if key.fileobj is self.socket:
                        self._accept(sel, conns)
                    elif key.fileobj is self._wake_r:
                        # Drain, THEN clear the flag. Cleared first, a worker returning in
                        # between would send a byte this recv swallows and leave the flag set
                        # with the pipe empty: every later return would wait out the 0.5 s
                        # select timeout. In this order a set flag always means a byte is
                        # pending or ``_returned`` is about to be drained below.
                        try:
                            self._wake_r.recv(4096)
                        except BlockingIOError:
                            pass
                        self._wake_sent = False
                    else:
                        self._readable(sel, conns, key.data)
                while self._returned:
                    conn = self._returned.popleft()
                    conns[conn.sock.fileno()] = conn
                    sel.register(conn.sock, selectors.EVENT_READ, conn)
                    if conn.buf:                 # a pipelined request already buffered
                        self._advance(sel, conns, conn)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + 0.5
                    self._sweep(sel, conns, now)
        finally:
            for conn in list(conns.values()):
                self._close(sel, conns, conn)
            sel.close()

    def _accept(self, sel, conns) -> None:
        for _ in range(64):                      # drain a burst, then serve the others
            try:
                sock, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:               # EMFILE and friends: log, keep serving
                log.warning("accept failed: %s", exc)
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._open_lock:
                full = self._open >= self.max_connections
                if not full:
                    self._open += 1
            if full:
                self._refuse(sock, 503, f"too many connections (at most {self.max_connections})")
                continue
            sock.setblocking(False)
            conn = _Conn(sock, addr, time.monotonic())
            conns[sock.fileno()] = conn
            sel.register(sock, selectors.EVENT_READ, conn)

    @staticmethod
    def _refuse(sock, status: int, message: str) -> None:
        """Answer on a socket that never entered the loop, then close it."""
        try:
            sock.settimeout(1.0)
            sock.sendall(response_bytes(status, error_body(message), keep_alive=False))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            sock.close()

    def _close(self, sel, conns, conn) -> None:
        fd = conn.sock.fileno()
        if conns.pop(fd, None) is not None:
            sel.unregister(conn.sock)
        conn.sock.close()
        with self._open_lock:
            self._open -= 1

    def _readable(self, sel, conns, conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(sel, conns, conn)
            return
        if conn.started is None:
            conn.started = time.monotonic()
        conn.buf += data
        self._advance(sel, conns, conn)

    def _fail(self, sel, conns, conn, status: int, message: str) -> None:
        log.info("%s: refused %d: %s", conn.addr[0], status, message)
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(1.0)
            conn.sock.sendall(response_bytes(status, error_body(message), keep_alive=False))
        except OSError:
            pass
        self._close(sel, conns, conn)

    def _advance(self, sel, conns, conn) -> None:
        """Parse what ``conn.buf`` holds; hand a complete request to the workers."""
        try:
            request = self._parse(conn)
        except HTTPError as exc:
            self._fail(sel, conns, conn, exc.status, str(exc))
            return
        if request is None:
            return
        sel.unregister(conn.sock)
        del conns[conn.sock.fileno()]
        try:
            self._jobs.put_nowait((conn, request))
        except queue.Full:
            conns[conn.sock.fileno()] = conn
            sel.register(conn.sock, selectors.EVENT_READ, conn)
            self._fail(sel, conns, conn, 503, "the extender is busy; retry")

    def _parse(self, conn) -> Request | None:
        buf = conn.buf
        if conn.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise HTTPError(431, f"request headers over {MAX_HEADER_BYTES} bytes")
                return None
            if end > MAX_HEADER_BYTES:
                raise HTTPError(431, f"request headers over {MAX_HEADER_BYTES} bytes")
            conn.head = parse_head(bytes(buf[:end]))
            del buf[:end + 4]
            headers = conn.head[2]
            te, cl = headers.get("transfer-encoding"), headers.get("content-length")
            if te is not None and cl is not None:
                raise HTTPError(400, "both Content-Length and Transfer-Encoding given")
            if te is not None:
                if te.lower() != "chunked":
                    raise HTTPError(501 if te.lower() in ("gzip", "deflate", "compress")
                                    else 400, f"unsupported Transfer-Encoding {short(te)}")
                conn.chunks = bytearray()
            elif cl is not None:
                if not cl.isdigit() or not cl.isascii() or len(cl) > 18:
                    raise HTTPError(400, f"invalid Content-Length {short(cl)}")
                conn.need = int(cl)
                if conn.need > self.max_body:
                    raise HTTPError(413, f"request body of {conn.need} bytes; the limit is "
                                         f"{self.max_body}")
            else:
                conn.need = 0
            if headers.get("expect", "").lower() == "100-continue" and not conn.continued \
                    and conn.need != 0:
                conn.continued = True
                try:
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                except OSError:
                    pass
        if conn.chunks is not None:
            body = self._dechunk(conn)
            if body is None:
                return None
        else:
            if len(buf) < conn.need:
                return None
            body = bytes(buf[:conn.need])
            del buf[:conn.need]
        method, path, headers, keep_alive = conn.head
        return Request(method, path, headers, body, keep_alive, conn.started)

    def _dechunk(self, conn) -> bytes | None:
        """Decode as many whole chunks as ``conn.buf`` holds; the body once the last is in."""
        buf = conn.buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                if len(buf) > 1024:
                    raise HTTPError(400, "malformed chunk size line")
                return None
            m = _CHUNK_SIZE.match(bytes(buf[:eol]))
            if not m:
                raise HTTPError(400, f"malformed chunk size line {short(bytes(buf[:eol]))}")
            size = int(m.group(1), 16)
            if len(conn.chunks) + size > self.max_body:
                raise HTTPError(413, f"chunked request body over the limit of {self.max_body} bytes")
            if size == 0:                        # last chunk; no trailers accepted
                if len(buf) < eol + 4:
                    return None
                if buf[eol + 2:eol + 4] != b"\r\n":
                    raise HTTPError(400, "trailers after the last chunk are not accepted")
                del buf[:eol + 4]
                body, conn.chunks = bytes(conn.chunks), None
                return body
            if len(buf) < eol + 2 + size + 2:
                return None
            start = eol + 2
            if buf[start + size:start + size + 2] != b"\r\n":
                raise HTTPError(400, "a chunk is not followed by CRLF")
            conn.chunks += buf[start:start + size]
            del buf[:start + size + 2]

    def _sweep(self, sel, conns, now) -> None:
        """Close connections past their read or idle deadline."""
        for conn in list(conns.values()):
            if conn.started is not None:
                if now - conn.started > self.read_timeout:
                    self._fail(sel, conns, conn, 408,
                               f"the request did not arrive within {self.read_timeout:g} s")
            elif now - conn.idle_since > self.idle_timeout:
                self._close(sel, conns, conn)

    # ---- workers --------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            conn, request = job
            status, body = self._run(request)
            keep = request.keep_alive and not self._stop.is_set()
            out = response_bytes(status, body, keep)
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(self.read_timeout)
                conn.sock.sendall(out)
                conn.sock.setblocking(False)
            except OSError:
                keep = False
            if self.access_log is not None:
                try:
                    self.access_log(conn.addr[0], request.method, request.path, status,
                                    len(body), time.monotonic() - request.started)
                except Exception:   # a logging failure never breaks serving
                    log.exception("access log failed")
            if keep:
                conn.reset(time.monotonic())
                if conn.buf:
                    conn.started = time.monotonic()
                self._returned.append(conn)
                if not self._wake_sent:          # one byte wakes the loop for every return
                    self._wake_sent = True       # queued before it drains ``_returned``
                    self._wake()
            else:
                try:
                    conn.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                conn.sock.close()
                with self._open_lock:
                    self._open -= 1

    def _run(self, request: Request) -> tuple[int, bytes]:
        try:
            return self.app(request.method, request.path, request.body)
        except Exception:
            log.exception("%s %s failed", request.method, short(request.path, 80))
            return 500, error_body("internal error in the extender; see its log")


__all__ = ["Server", "HTTPError", "parse_head", "response_bytes", "short", "MAX_HEADER_BYTES"]
