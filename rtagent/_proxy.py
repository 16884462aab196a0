"""HTTP ``CONNECT`` tunnels through a proxy, chosen from the environment.

The client honours ``HTTPS_PROXY`` (for ``wss://``) and ``HTTP_PROXY`` (for ``ws://``),
and ``NO_PROXY``, as websockets and the ``openai`` package do; loopback addresses never
go through a proxy. Credentials in the proxy URL (``http://user:pass@proxy:3128``) are
sent as ``Proxy-Authorization: Basic`` and never logged.
"""

from __future__ import annotations

import base64
import logging
import ssl
import urllib.request
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc

from ._errors import ConfigurationError, TransportError

__all__ = ["open_tunnel", "proxy_for"]

logger = logging.getLogger("rtagent.transport")

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_MAX_HEAD = 2**16


def proxy_for(host: str, secure: bool) -> str | None:
    """The proxy URL the environment sets for this host, or None to connect directly."""
    if host in _LOOPBACK or host.startswith("127."):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get("https" if secure else "http")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def describe(proxy: str) -> str:
    """The proxy's address for messages, without credentials."""
    parts = urlsplit(proxy)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or _default_port(parts.scheme)}"


async def open_tunnel(
    proxy: str, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> anyio.abc.ByteStream:
    """Connect to ``proxy`` and ask it for a tunnel to ``host:port``.

    Raises:
        ConfigurationError: the proxy URL is not ``http://`` or ``https://``.
        TransportError: the proxy cannot be reached or refused the tunnel.
    """
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"unsupported proxy {describe(proxy)!r}: use http:// or https://")
    where = describe(proxy)
    port_of_proxy = parts.port or _default_port(parts.scheme)
    stream: anyio.abc.ByteStream
    try:
        if parts.scheme == "https":
            stream = await anyio.connect_tcp(
                parts.hostname, port_of_proxy, tls=True, ssl_context=ssl_context
            )
        else:
            stream = await anyio.connect_tcp(parts.hostname, port_of_proxy)
    except OSError as exc:
        raise TransportError(f"cannot reach proxy {where}: {exc}") from exc
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(token).decode("ascii"))
    try:
        await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = bytearray()
        while b"\r\n\r\n" not in head:
            if len(head) > _MAX_HEAD:
                raise TransportError(f"proxy {where} sent an oversized answer")
            head += await stream.receive()
    except (OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
        await anyio.aclose_forcefully(stream)
        raise TransportError(f"proxy {where} closed the connection: {exc!r}") from exc
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or fields[1] != "200":
        await anyio.aclose_forcefully(stream)
        raise TransportError(f"proxy {where} refused the tunnel to {host}:{port}: {status_line}")
    if head.index(b"\r\n\r\n") + 4 != len(head):
        await anyio.aclose_forcefully(stream)
        raise TransportError(f"proxy {where} sent data before the tunnel was open")
    logger.debug("tunnel to %s:%d through %s", host, port, where)
    return stream


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
