"""uvicorn's httptools protocol, with each response's writes coalesced into one socket write.

uvicorn writes a response's status line and headers when the app sends `http.response.start`
and the body when it sends `http.response.body`: two `send` system calls, two TCP segments,
and on loopback two wake-ups of the client, for a response of a few hundred bytes.  Here the
connection's transport buffers what is written and hands it to the socket in one write as soon
as uvicorn marks the response complete (else at the loop's next pass, e.g. a `100 Continue`,
or when the connection is closed), so a response costs one system call and waits for nothing.
Order is kept (one buffer per connection); nothing else about the protocol changes: parsing,
keep-alive, pipelining and flow control are uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """Wraps a connection's transport: `write` buffers until the loop's next pass."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()  # what was written goes out before the connection closes
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading...
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(self.coalescing)  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        self.coalescing.flush()  # the whole response, now, in one write
        super().on_response_complete()
