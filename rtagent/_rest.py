"""JSON over HTTP to a Realtime service's REST API (client secrets, later the Calls API).

``urllib.request`` keeps the core free of an HTTP dependency (it honours the same proxy
variables as the WebSocket client); async callers run it in a worker thread. Requests
go to the :class:`~rtagent._endpoint.Endpoint`'s base URL with its credentials, which
are never logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from functools import partial
from typing import Any

import anyio.to_thread

from ._endpoint import Endpoint
from ._errors import RequestError, TransportError

__all__ = ["apost_json", "post_json"]

logger = logging.getLogger("rtagent.rest")

_TIMEOUT = 30.0


def post_json(
    endpoint: Endpoint,
    path: str,
    body: dict[str, Any] | None,
    *,
    error: type[RequestError] = RequestError,
) -> Any:
    """POST ``body`` as JSON to ``path`` under the endpoint; the decoded JSON answer.

    Raises:
        RequestError: (or ``error``) the server answered with an HTTP error status.
        TransportError: the server could not be reached, or answered with no JSON.
    """
    url = endpoint.rest_url(path)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    headers.update(endpoint.all_headers())
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    logger.debug("POST %s", url)  # never the headers: they carry the key
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise _refused(error, exc.code, exc.read()) from None
    except urllib.error.URLError as exc:
        raise TransportError(f"cannot reach {url}: {exc.reason}") from exc
    except (OSError, TimeoutError) as exc:
        raise TransportError(f"cannot reach {url}: {exc}") from exc
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise TransportError(f"{url} answered with something that is not JSON") from exc


async def apost_json(
    endpoint: Endpoint,
    path: str,
    body: dict[str, Any] | None,
    *,
    error: type[RequestError] = RequestError,
) -> Any:
    """:func:`post_json` for async callers (the request runs in a worker thread)."""
    return await anyio.to_thread.run_sync(partial(post_json, endpoint, path, body, error=error))


def _refused(error: type[RequestError], status: int, raw: bytes) -> RequestError:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    try:
        detail = json.loads(raw)["error"]
        return error(
            status,
            str(detail.get("message") or "request failed"),
            type=str(detail.get("type") or kind),
            code=detail.get("code"),
            param=detail.get("param"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        text = raw.decode("utf-8", "replace").strip()[:200]
        return error(status, text or "request failed", type=kind)
