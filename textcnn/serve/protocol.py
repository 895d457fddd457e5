"""The connection layer under the app: the listening socket, read deadlines, a connection cap.

uvicorn (0.54) has no timeout for receiving a request's line and headers: its keep-alive timer
only runs between requests and the first byte of a new one cancels it, so a client that sends
half a request and then nothing holds a connection (and a file descriptor) forever. ASGI code
cannot help, since the app is called only once the headers are complete. So
:func:`guarded_protocol` extends uvicorn's httptools protocol, the connection object uvicorn
builds for each client, with three things:

- read deadlines: from the connection's start, or the first byte of a later request, the
  request line and headers must be complete within ``header_timeout_s``, and the body within
  ``body_timeout_s`` of the headers; otherwise the client gets a 408 in the service's error
  shape and the connection is closed (one timer per request: a few microseconds);
- a connection cap: past ``max_connections`` open connections, a new one gets a 503 and is
  closed at once (its file descriptor is freed, not held until the client leaves);
- on SIGTERM, a connection whose request body is still arriving is closed at once (uvicorn
  would otherwise wait ``graceful_timeout_s`` for a client that may never send it); requests
  whose body has arrived still finish.

:func:`bind_socket` takes the port before the model is loaded, so a port in use is one clear
error, not a traceback after the load; :func:`open_file_budget` makes room for the connection
cap under the process's open-file limit.
"""

import errno
import socket
import sys

from ..errors import TextCNNError
from .errors import error_body
from .gate import ANSWERED, json_bytes
from .settings import ServeSettings

FD_RESERVE = 64  # open files the process needs besides its connections (about 16 measured)


def raw_response(status: int, reason: str, payload: dict) -> bytes:
    """A complete HTTP/1.1 response with a JSON body that closes the connection."""
    body = json_bytes(payload)
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class ConnectionGuard:
    """What :func:`guarded_protocol` adds to uvicorn's httptools protocol (a mixin: the class
    attributes are set per server)."""

    head_s = 10.0  # header_timeout_s
    body_s = 30.0  # body_timeout_s
    max_connections = 1000
    head_late = body_late = full = b""  # the 408 and 503 responses, ready to write
    _timer = None  # the deadline of the request being received: one timer per request
    _body_since = None  # when its headers were complete (None: they are not yet)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(self.full)
            transport.close()
        else:  # a connection that sends nothing has head_s to send a request
            self._timer = self.loop.call_later(self.head_s, self._late)

    def on_message_begin(self) -> None:  # the first byte of a request
        super().on_message_begin()
        self._body_since = None
        if self._timer is None:
            self._timer = self.loop.call_later(self.head_s, self._late)

    def on_headers_complete(self) -> None:
        self._body_since = self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_timer()
        super().on_message_complete()

    def connection_lost(self, exc) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and cycle.more_body:
            self.transport.close()  # its body is still arriving: do not wait for it
        else:
            super().shutdown()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _late(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._body_since is None:
            self.transport.write(self.head_late)
        else:
            left = self._body_since + self.body_s - self.loop.time()
            if left > 0:  # the head came in time; the body has until its own deadline
                self._timer = self.loop.call_later(left, self._late)
                return
            if not self.cycle.response_started:
                self.cycle.scope[ANSWERED] = 408  # for the access log
                self.transport.write(self.body_late)
        self.transport.close()


def guarded_protocol(settings: ServeSettings, max_connections: int) -> type:
    """uvicorn's httptools protocol with :class:`ConnectionGuard`: header and body deadlines,
    a connection cap and a shutdown that does not wait for stalled uploads (pass it as
    ``uvicorn.Config(http=...)``).

    Parameters
    ----------
    settings : ServeSettings
        Gives ``header_timeout_s`` and ``body_timeout_s``.
    max_connections : int
        Open connections past which a new one is refused (see :func:`open_file_budget`).

    Raises
    ------
    TextCNNError
        httptools is not installed (it comes with ``pip install 'textcnn[serve]'``).
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        raise TextCNNError("textcnn serve needs httptools: pip install 'textcnn[serve]'") from None
    head_s, body_s = settings.header_timeout_s, settings.body_timeout_s
    return type("GuardedProtocol", (ConnectionGuard, HttpToolsProtocol), {
        "head_s": head_s, "body_s": body_s, "max_connections": max_connections,
        "head_late": raw_response(408, "Request Timeout", error_body(
            ["headers"], f"request line and headers not received within {head_s:g} s",
            "header_timeout")),
        "body_late": raw_response(408, "Request Timeout", error_body(
            ["body"], f"request body not received within {body_s:g} s of its headers",
            "body_timeout")),
        "full": raw_response(503, "Service Unavailable", error_body(
            [], f"the server is at its limit of {max_connections} open connections; retry "
                "later", "too_many_connections", ("max_connections", max_connections))),
    })


def open_file_budget(wanted: int) -> int:
    """How many connections this process can hold open, at most ``wanted``.

    Raises the soft open-file limit (``ulimit -n``, often 1024) toward the hard one when
    ``wanted`` connections need it; where the hard limit is lower, the answer is what fits.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit to adjust
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, taken before the model loads; it listens (accepts
    connections) only once the server starts, so nothing connects to a server that cannot
    answer yet.

    Raises
    ------
    TextCNNError
        The host is unknown, or the port is in use or not allowed.
    """
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise TextCNNError(f"cannot listen on {where}: unknown host ({exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":  # on Windows it would let a second server share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = (": another process is listening there; stop it or choose another --port"
                if exc.errno == errno.EADDRINUSE else f": {exc.strerror or exc}")
        raise TextCNNError(f"cannot listen on {where}{hint}") from None
    return sock
