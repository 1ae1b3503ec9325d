"""The requests aiohttp answers on a connection that stays :mod:`location_api.site`'s.

A :class:`Relay` is the transport of one aiohttp request handler, made for a connection the
first time one of its requests is not a plain search, and kept for the connection's life.
Each such request (one without a body: :class:`location_api.search_heads.Other`) is given to
the handler alone; what the handler writes goes to the connection's transport, read on the
way by :class:`location_api.answer_framing.AnswerFraming`, which says when the answer is
whole: then the connection reads its next request again. When the answer ends the connection
(``Connection: close``, or the HTTP/1.0 answer of aiohttp's parser to a request it refused),
or aiohttp gives up on a request before answering it whole, the connection is closed. When the
handler closes while it answers nothing (its idle timeout), it is let go; the next request
aiohttp answers gets a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp.web_protocol import RequestHandler

from location_api.answer_framing import AnswerFraming

log = logging.getLogger(__name__)


class Relay(asyncio.Transport):
    """The transport of a connection's aiohttp request handler.

    Args:
        real: the connection's transport.
        handler: aiohttp's handler for this connection (not yet given a transport).
        answered: called with True when an answer is whole and the connection goes on, with
            False when it must be closed once what is written is sent.
        gone: called when the handler has let this transport go (no request in flight).
    """

    def __init__(
        self,
        real: asyncio.Transport,
        handler: RequestHandler,
        answered: Callable[[bool], None],
        gone: Callable[[], None],
    ) -> None:
        super().__init__()
        self._real = real
        self._handler: RequestHandler | None = handler
        self._answered = answered
        self._gone = gone
        self._framing = AnswerFraming()
        self._closed = False
        handler.connection_made(self)

    @property
    def handler(self) -> RequestHandler | None:
        """The handler, until it has let this transport go."""
        return self._handler

    def send(self, method: bytes, request: bytes) -> None:
        """Give the handler ``request``: the bytes of one request without a body."""
        assert self._handler is not None
        self._framing.expect(method)
        self._handler.data_received(request)

    # What aiohttp's handler and its writer use of a transport.

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closed:
            self._real.write(data)
            self._read((data,))

    def writelines(self, list_of_data: Any) -> None:
        if not self._closed:
            chunks = list(list_of_data)
            self._real.writelines(chunks)
            self._read(chunks)

    def _read(self, chunks: Any) -> None:
        try:
            ended = [answer for data in chunks for answer in self._framing.feed(data)]
        except ValueError:
            log.exception("an answer of aiohttp's could not be framed; the connection is closed")
            self._answered(False)
            return
        for answer in ended:
            self._answered(answer.keep_alive)

    def is_closing(self) -> bool:
        return self._closed or self._real.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        pass  # the handler is given one request at a time: it has nothing to stop reading

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._framing.pending:
            self._answered(False)  # aiohttp gave up before answering whole
        asyncio.get_running_loop().call_soon(self._let_go, None)

    def abort(self) -> None:
        self._closed = True
        self._real.abort()
        asyncio.get_running_loop().call_soon(self._let_go, None)

    def lost(self, exc: BaseException | None) -> None:
        """The connection is lost: the handler is told; nothing more is written."""
        self._closed = True
        self._let_go(exc)

    def _let_go(self, exc: BaseException | None) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            handler.connection_lost(exc)
            self._gone()
