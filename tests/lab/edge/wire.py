"""The edge's side of the wire: TLS over memory BIOs and a gorilla/websocket-like client.

Independent of standin/cloudhub.py on purpose (the two ends of RFC 6455 written twice, so a
framing mistake in one shows up against the other). TLS runs over memory BIOs because asyncio's
SSL transport keeps a 256 KiB read buffer per connection (asyncio/sslproto.py ``max_size``):
2000 connections for 1000 edges would cost half a gigabyte.

Go semantics kept where edgecore's behaviour depends on them:
- a write "blocks" only while the kernel send buffer is full (write buffer high-water mark 0),
  and fails after the write deadline (gorilla ``SetWriteDeadline``);
- ``close()`` is Go's ``tls.Conn.Close`` (close_notify, then FIN); a write after it fails with
  "use of closed network connection";
- the dial (TCP connect + TLS + HTTP upgrade) is one unit under the handshake timeout
  (gorilla ``Dialer.HandshakeTimeout``).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class TLSClient(asyncio.Protocol):
    """A client TLS connection; plaintext arrives in ``reader``."""

    def __init__(self, context: ssl.SSLContext, server_hostname: str | None):
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_side=False, server_hostname=server_hostname)
        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader(limit=1 << 20)
        self.handshake: asyncio.Future = loop.create_future()
        self.lost: asyncio.Future = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._resume: asyncio.Future | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.set_write_buffer_limits(high=0)
        self._handshake_step()

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if self.handshake.done():
            self._read_plain()
        else:
            self._handshake_step()

    def eof_received(self) -> bool:
        """The peer's FIN: reads see EOF, the socket stays open for writes until the reader closes
        it (viaduct's handleMessage does; a Go write after a FIN still succeeds)."""
        self._in.write_eof()
        if self.handshake.done():
            self._read_plain()
            return True
        self._handshake_step()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError("EOF during TLS handshake"))
            self.handshake.exception()
        if exc is not None:
            self.reader.set_exception(exc)
        else:
            self.reader.feed_eof()
        if not self.lost.done():
            self.lost.set_result(exc)
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def pause_writing(self) -> None:
        self._resume = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def _flush(self) -> None:
        data = self._out.read()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _handshake_step(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, OSError) as exc:
            self._flush()
            if not self.handshake.done():
                self.handshake.set_exception(exc)
                self.handshake.exception()
            self.transport.close()
            return
        self._flush()
        if not self.handshake.done():
            self.handshake.set_result(None)
        self._read_plain()

    def _read_plain(self) -> None:
        while True:
            try:
                chunk = self._ssl.read(65536)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.reader.feed_eof()
                break
            except (ssl.SSLError, OSError) as exc:  # e.g. the server's alert for our certificate
                self.reader.set_exception(exc)
                self.abort()
                break
            if not chunk:
                self.reader.feed_eof()
                break
            self.reader.feed_data(chunk)
        self._flush()

    @property
    def closed(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("use of closed network connection")
        self._ssl.write(data)
        self._flush()

    async def drain(self, timeout: float | None) -> None:
        """Wait while the kernel buffer is full; TimeoutError after the write deadline."""
        if self._resume is not None and not self._resume.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._resume), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError("i/o timeout") from None
        if self.lost.done():
            raise ConnectionResetError("use of closed network connection")

    def close(self) -> None:
        if self.closed:
            return
        if self.handshake.done() and not self.handshake.exception():
            try:
                self._ssl.unwrap()
            except (ssl.SSLError, OSError):
                pass
            self._flush()
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    return (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """RFC 6455 5.2: FIN, masked with a fresh random key (clients must mask)."""
    n, mask = len(payload), os.urandom(4)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + mask_payload(payload, mask)


class WebSocket:
    """An upgraded connection: gorilla's client Conn, reduced to what edgehub and edgestream use."""

    def __init__(self, tls: TLSClient, headers: dict[str, str]):
        self.tls, self.headers = tls, headers
        self.on_pong = None  # callable(): gorilla SetPongHandler

    @property
    def closed(self) -> bool:
        return self.tls.closed

    async def send(self, opcode: int, payload: bytes, deadline: float | None) -> None:
        """One frame; raises on a closed connection or when the write deadline passes."""
        self.tls.write(client_frame(opcode, payload))
        await self.tls.drain(deadline)

    async def read_message(self) -> tuple[int, bytes]:
        """gorilla ReadMessage: pings answered, pongs to ``on_pong``, close frames end it."""
        opcode, parts = None, []
        reader = self.tls.reader
        while True:
            b0, b1 = await reader.readexactly(2)
            if b1 & 0x80:
                raise ConnectionError("websocket: bad MASK")
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            op, payload = b0 & 0x0F, await reader.readexactly(length)
            if op == OP_PING:
                try:
                    self.tls.write(client_frame(OP_PONG, payload))
                except ConnectionError:
                    pass
            elif op == OP_PONG:
                if self.on_pong is not None:
                    self.on_pong()
            elif op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise ConnectionError(f"websocket: close {code}")
            else:
                if opcode is None:
                    opcode = op
                parts.append(payload)
                if b0 & 0x80:
                    return opcode, b"".join(parts)

    def close(self) -> None:
        self.tls.close()

    def abort(self) -> None:
        self.tls.abort()


class HandshakeError(ConnectionError):
    """gorilla ``websocket: bad handshake`` (with the status line)."""


async def dial(host: str, port: int, path: str, headers: list[tuple[str, str]], context: ssl.SSLContext,
               source: str | None, server_hostname: str | None) -> WebSocket:
    """TCP from ``source`` (bound before connect), TLS, then the HTTP/1.1 upgrade."""
    loop = asyncio.get_running_loop()
    tls: TLSClient | None = None
    ok = False
    try:
        _transport, tls = await loop.create_connection(
            lambda: TLSClient(context, server_hostname), host, port,
            local_addr=(source, 0) if source else None)
        await tls.handshake
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"GET {path} HTTP/1.1", f"Host: {host_header}", "User-Agent: Go-http-client/1.1",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 "Upgrade: websocket"] + [f"{name}: {value}" for name, value in headers]
        tls.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = (await tls.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        response: dict[str, str] = {}
        for line in head[1:]:
            name, _colon, value = line.partition(":")
            if name:
                response.setdefault(name.strip().lower(), value.strip())
        status = head[0].split(" ", 2)
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if len(status) < 2 or status[1] != "101" or response.get("sec-websocket-accept") != expected:
            raise HandshakeError(f"websocket: bad handshake ({head[0]})")
        ok = True
        return WebSocket(tls, response)
    finally:
        if not ok and tls is not None:
            tls.abort()


def client_context(ca_pem: bytes | None, cert_file: str, key_file: str) -> ssl.SSLContext:
    """edgehub's tls.Config (RootCAs = the CA, verify) or edgestream's (InsecureSkipVerify)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_pem is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    context.load_cert_chain(cert_file, key_file)
    return context
