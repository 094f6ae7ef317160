"""How much a WebSocket has queued in this process and not yet handed to the kernel.

Daphne's ``send`` never waits: a frame for a client that stopped reading goes into the
Twisted transport's write buffer, which grows without limit. The consumer reads that
buffer's size before each send and closes the socket (4008) past
``ETHER_WS_MAX_BACKLOG_BYTES``, so a stalled client costs at most that much memory plus
its kernel socket buffer.

The transport is reached through the ``send`` callable daphne hands the application
(``functools.partial(server.handle_reply, protocol)``). Under any other server, or the
test communicator, there is no such transport and the backlog reads as 0: the channel
layer's per-channel capacity is then the only bound.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.internet import tcp


def transport_of(send: Callable[..., Any]) -> Any | None:
    if isinstance(send, partial) and send.args:
        return getattr(send.args[0], "transport", None)
    return None


def pending_bytes(transport: Any | None) -> int:
    """Bytes written to the transport that the kernel has not accepted yet."""
    if transport is None:
        return 0
    # twisted.internet.abstract.FileDescriptor keeps a flushed-in-part buffer plus a list
    # of writes not yet joined into it.
    buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return max(buffered, 0) + getattr(transport, "_tempDataLen", 0)


class Wire:
    """Direct writes to a daphne WebSocket, for frames encoded once for many sockets.

    ``send`` would go through daphne's reply path and autobahn's per-socket framing (and
    its debug logging, whose arguments are built even with debug off) for every
    subscriber; a prepared message (``fanout.Frame.prepared``) is framed once and written
    to each transport as is. Writes happen on the event loop, in program order
    with everything else the consumer sends (daphne's own ``send`` never yields either).
    """

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    @property
    def open(self) -> bool:
        return bool(self.protocol.state == self.protocol.STATE_OPEN)

    @property
    def plain(self) -> bool:
        """Prepared bytes may go straight to the transport: no compression negotiated,
        and nothing queued in autobahn before them."""
        return self.protocol._perMessageCompress is None and not self.protocol.send_queue

    def write_raw(self, data: bytes) -> None:
        write_now(self.protocol.transport, data)

    def pending(self) -> int:
        return pending_bytes(getattr(self.protocol, "transport", None))

    def write_text(self, text: str) -> None:
        self.protocol.sendMessage(text.encode("utf-8"), False)


def write_now(transport: Any, data: bytes) -> None:
    """Writes to a plain TCP transport's socket at once when nothing is queued before it.

    Twisted's ``write`` always buffers, registers the socket for writability (an
    ``epoll_ctl``), sends on the next loop iteration and unregisters it (another): per
    socket per frame, which is most of a fan-out's cost. A non-blocking ``send`` does the
    same in one system call; whatever the kernel does not take goes to Twisted as usual.
    TLS and other transports always go through ``write``."""
    if (
        isinstance(transport, tcp.Connection)
        and transport.connected
        and not transport.disconnecting
        and pending_bytes(transport) == 0
    ):
        try:
            sent = transport.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = 0  # Twisted's own write meets the error and closes the connection
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def wire_of(send: Callable[..., Any]) -> Wire | None:
    """The daphne WebSocket behind ``send``, or None (the test communicator, other servers:
    frames then go through ``send``)."""
    if isinstance(send, partial) and send.args:
        protocol = send.args[0]
        if hasattr(protocol, "sendPreparedMessage") and hasattr(protocol, "STATE_OPEN"):
            return Wire(protocol)
    return None
