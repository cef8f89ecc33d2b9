"""The HTTP/1.1 protocols ``vigil serve`` runs: uvicorn's, answering in the error envelope.

uvicorn answers a request its parser cannot read (a malformed request line, a header without a
colon, a head too large) itself, before the app sees it, with a plain-text ``400 Invalid HTTP
request received.``. These subclasses answer with the envelope every other error uses:
``400 BAD_REQUEST``, or ``431 REQUEST_HEADER_FIELDS_TOO_LARGE`` when the request line and headers
pass ``MAX_HEADER_BYTES`` (h11 says so itself; httptools has no limit of its own, so its
subclass counts). Pass one to ``uvicorn.run(http=...)``: ``PROTOCOL`` is the one to use, by
import string so that every worker process imports it.
"""

from __future__ import annotations

from typing import Any

import h11
import msgspec
from uvicorn.protocols.http.h11_impl import H11Protocol

from control_plane.core.errors import ErrorBody, ErrorEnvelope
from control_plane.core.input_limits import MAX_HEADER_BYTES

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard]
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}
_ANSWERS = {
    400: ("BAD_REQUEST", "the request could not be read as HTTP/1.1"),
    431: (
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
        f"the request line and headers must total at most {MAX_HEADER_BYTES} bytes",
    ),
}


def envelope(status: int) -> bytes:
    code, message = _ANSWERS[status]
    return msgspec.json.encode(ErrorEnvelope(ErrorBody(code=code, message=message)))


def _headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]


class _Connection(h11.Connection):
    """h11's connection, remembering the status its last protocol error suggests."""

    error_status = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error_status = 431 if exc.error_status_hint == 431 else 400
            raise


class EnvelopeH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.config.h11_max_incomplete_event_size
        self.conn = _Connection(h11.SERVER, limit if limit is not None else MAX_HEADER_BYTES)

    def send_400_response(self, msg: str) -> None:
        conn = self.conn
        status = conn.error_status if isinstance(conn, _Connection) else 400
        body = envelope(status)
        for event in (
            h11.Response(status_code=status, headers=_headers(body), reason=_REASONS[status]),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(conn.send(event) or b"")
        self.transport.close()


class _HeadTooLarge(Exception):
    pass


if HttpToolsProtocol is not None:

    class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
        """httptools buffers a request's head without bound: count it, and refuse it past
        ``MAX_HEADER_BYTES`` as the parser hands over the URL and headers; and, since the parser
        holds a header until it ends, refuse a head still unfinished after twice that many
        bytes arrived (the bytes of one header that never ends)."""

        _head_bytes = 0
        _received = 0
        _in_head = False
        _too_large = False

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes = self._received = 0
            self._in_head = True

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value))
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def _count(self, n: int) -> None:
            self._head_bytes += n
            if self._head_bytes > MAX_HEADER_BYTES:
                self._too_large = True
                raise _HeadTooLarge

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                # Still no end of the head: what arrived is (nearly) all head, held by the
                # parser (the part before the message began is counted too: a loose bound).
                self._received += len(data)
                if self._received > 2 * MAX_HEADER_BYTES:
                    self._too_large = True
                    self.send_400_response("head too large")

        def send_400_response(self, msg: str) -> None:
            status = 431 if self._too_large else 400
            body = envelope(status)
            head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
            for name, value in self.server_state.default_headers:
                head.append(name + b": " + value + b"\r\n")
            for name, value in _headers(body):
                head.append(name + b": " + value + b"\r\n")
            self.transport.write(b"".join([*head, b"\r\n", body]))
            self.transport.close()

    PROTOCOL = "control_plane.core.http_protocols:EnvelopeHttpToolsProtocol"
else:  # pragma: no cover
    PROTOCOL = "control_plane.core.http_protocols:EnvelopeH11Protocol"
