"""Where a Realtime service is and how to authenticate: one value for every caller.

:class:`Endpoint` holds the REST base URL, the model (the deployment name on Azure) and
the credential headers. The runtime derives its WebSocket URL from it, client secrets
and the Calls API their REST URLs, and the CLI builds one from its options, so the
rules for OpenAI, Azure OpenAI and a local server live here only:

* OpenAI: ``https://api.openai.com/v1`` (or ``OPENAI_BASE_URL``), ``Authorization:
  Bearer`` with ``OPENAI_API_KEY``; a key is required.
* Azure OpenAI (GA): ``https://<resource>.openai.azure.com/openai/v1``, an ``api-key``
  header (``AZURE_OPENAI_API_KEY``) or an Entra ID bearer token; the model is the
  deployment name.
* Any other server (``url=`` of a WebSocket endpoint, or ``base_url=``), such as the
  local server: a key is sent when one is given or set, and not required.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._agent import DEFAULT_MODEL
from ._errors import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "Endpoint", "EndpointOptions"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

_SECRET_HEADERS = frozenset({"authorization", "api-key", "proxy-authorization"})


class EndpointOptions(TypedDict, total=False):
    """The options that name an endpoint; see :meth:`Endpoint.resolve`."""

    url: str | None
    base_url: str | None
    api_key: str | None
    model: str | None
    azure_endpoint: str | None
    azure_deployment: str | None
    azure_api_key: str | None
    azure_ad_token: str | None
    headers: Mapping[str, str] | None


@dataclass(frozen=True)
class Endpoint:
    """A Realtime service: REST base URL, model, credentials and extra headers.

    Build it with :meth:`resolve` (the options of ``connect()``) rather than directly.
    Its ``repr`` never shows a credential.

    Attributes:
        base_url: the REST base, e.g. ``https://api.openai.com/v1``.
        model: the model id (the deployment name on Azure).
        credentials: the headers that authenticate (never logged or shown).
        headers: other handshake and request headers.
        realtime_url: an explicit WebSocket URL, when one was given.
    """

    base_url: str
    model: str
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    realtime_url: str | None = None

    def __repr__(self) -> str:
        shown = [(name, "<redacted>") for name, _ in self.credentials]
        shown += [(n, "<redacted>" if n.lower() in _SECRET_HEADERS else v) for n, v in self.headers]
        return (
            f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, "
            f"realtime_url={self.realtime_url!r}, headers={shown!r})"
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials)

    def all_headers(self) -> list[tuple[str, str]]:
        """Credentials first, then the extra headers."""
        return [*self.credentials, *self.headers]

    def websocket_url(self, *, call_id: str | None = None) -> str:
        """The Realtime WebSocket URL: ``?model=`` for a new session, ``?call_id=`` to
        attach to an existing call (a sideband)."""
        if self.realtime_url is not None:
            parts = urlsplit(self.realtime_url)
            scheme, netloc, path = parts.scheme, parts.netloc, parts.path
            query = dict(parse_qsl(parts.query))
        else:
            parts = urlsplit(self.base_url)
            scheme = "wss" if parts.scheme == "https" else "ws"
            netloc, path, query = parts.netloc, parts.path.rstrip("/") + "/realtime", {}
        if call_id is not None:
            query.pop("model", None)
            query["call_id"] = call_id
        elif "model" not in query and "call_id" not in query:
            query["model"] = self.model
        return urlunsplit((scheme, netloc, path, urlencode(query), ""))

    def rest_url(self, path: str) -> str:
        """A REST URL under the base, e.g. ``rest_url("/realtime/client_secrets")``."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def with_model(self, model: str) -> Endpoint:
        return Endpoint(self.base_url, model, self.credentials, self.headers, self.realtime_url)

    @classmethod
    def resolve(
        cls,
        *,
        url: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        default_model: str = DEFAULT_MODEL,
        azure_endpoint: str | None = None,
        azure_deployment: str | None = None,
        azure_api_key: str | None = None,
        azure_ad_token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Endpoint:
        """The endpoint these options name, with defaults from the environment.

        Args:
            url: a Realtime WebSocket URL (``ws://127.0.0.1:8765/v1/realtime``).
            base_url: a REST base URL (default ``OPENAI_BASE_URL``, else OpenAI's).
            api_key: bearer key (default ``OPENAI_API_KEY``).
            model: the model (default ``default_model``).
            default_model: the model when none is given (usually the agent's).
            azure_endpoint: ``https://<resource>.openai.azure.com`` for Azure OpenAI.
            azure_deployment: the Azure deployment name (sent as the model).
            azure_api_key: Azure key (default ``AZURE_OPENAI_API_KEY``), as ``api-key``.
            azure_ad_token: an Entra ID token, sent as a bearer token instead.
            headers: extra headers for the handshake and REST requests.

        Raises:
            ConfigurationError: conflicting options, or no credentials where required.
        """
        extra = tuple((str(k), str(v)) for k, v in (headers or {}).items())
        if azure_endpoint:
            if url or base_url:
                raise ConfigurationError("azure_endpoint cannot be combined with url or base_url")
            parts = urlsplit(azure_endpoint if "://" in azure_endpoint else "https://" + azure_endpoint)
            if not parts.netloc:
                raise ConfigurationError(f"not an Azure endpoint URL: {azure_endpoint!r}")
            key = azure_api_key or (None if azure_ad_token else os.environ.get("AZURE_OPENAI_API_KEY"))
            if key:
                credentials: tuple[tuple[str, str], ...] = (("api-key", key),)
            elif azure_ad_token:
                credentials = (("Authorization", f"Bearer {azure_ad_token}"),)
            else:
                raise ConfigurationError(
                    "no Azure credentials: pass azure_api_key=... (or set AZURE_OPENAI_API_KEY) "
                    "or azure_ad_token=..."
                )
            base = urlunsplit((parts.scheme or "https", parts.netloc, "/openai/v1", "", ""))
            return cls(base, azure_deployment or model or default_model, credentials, extra)
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        credentials = (("Authorization", f"Bearer {key}"),) if key else ()
        chosen = model or default_model
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("ws", "wss"):
                raise ConfigurationError(f"not a WebSocket URL: {url!r} (ws:// or wss://)")
            path = parts.path.rstrip("/")
            path = path[: -len("/realtime")] if path.endswith("/realtime") else path
            base = urlunsplit(("https" if parts.scheme == "wss" else "http", parts.netloc, path, "", ""))
            return cls(base, chosen, credentials, extra, realtime_url=url)
        base = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not credentials and base == DEFAULT_BASE_URL:
            raise ConfigurationError(
                "no API key: pass api_key=... or set OPENAI_API_KEY (or point url= at a local server)"
            )
        return cls(base, chosen, credentials, extra)
