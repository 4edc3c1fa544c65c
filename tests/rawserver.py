"""A server on 127.0.0.1 that answers with bytes as given: framing, interim answers and pacing that
tests/httpserver.py (a real HTTP server) would never send.

    with raw_server({b"/a": b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok"}) as port: ...

An answer is bytes (sent whole) or a function returning an iterable of pieces (sent one at a time, `pause`
seconds apart; it may be endless: the server stops when the client hangs up). A piece `CLOSE` closes
the connection there."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

__all__ = ["CLOSE", "Answer", "raw_server"]

CLOSE = b"<close>"  # as a piece of an answer: close the connection
Answer = bytes | Callable[[], Iterable[bytes]]


@contextmanager
def raw_server(answers: Mapping[bytes, Answer], pause: float = 0.0) -> Iterator[int]:
    """Serve `answers` by request path until the block ends; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_forever() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_connection, args=(conn,), daemon=True).start()

    def serve_connection(conn: socket.socket) -> None:
        with conn:
            buf = b""
            try:
                while data := conn.recv(65536):
                    buf += data
                    while b"\r\n\r\n" in buf:
                        head, buf = buf.split(b"\r\n\r\n", 1)
                        answer = answers[head.split(b" ")[1]]
                        for piece in [answer] if isinstance(answer, bytes) else answer():
                            if piece is CLOSE:
                                return
                            conn.sendall(piece)
                            time.sleep(pause)
            except OSError:
                return  # the client hung up

    threading.Thread(target=serve_forever, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
