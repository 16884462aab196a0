"""The local Realtime server: listener, authentication, client secrets, an engine per socket.

The HTTP side answers an unknown path with 404 and mints ephemeral keys at ``POST
/v1/realtime/client_secrets`` (a REST call: a bad key there is an HTTP 401). A
WebSocket upgrade on the Realtime path always succeeds (101), as on the real service,
which refuses a session afterwards: one ``error`` event, then the close, 3000 for
authentication (``invalid_api_key``; ``code: null`` when no credentials were sent) and
4000 for the request (``missing_model``, ``invalid_model`` for a model the ``openai``
package does not list, ``beta_api_shape_disabled`` for the retired beta header), with
the reason ``"<type>.<code>"``. Each accepted session gets its own sans-I/O
:class:`Engine`, driven by a :class:`~._connection.Connection`.

``/openai/v1/realtime`` imitates an Azure OpenAI GA resource (any deployment name is a
model there). ``?call_id=`` attaches a sideband to one of the server's calls
(:attr:`LocalRealtimeServer.calls`): it shares the call's session and starts without
``session.created``; a call that is unknown, still ringing or over is refused at the
handshake with HTTP 404 ``call_id_not_found`` (reported for unknown and ended calls; for
a ringing SIP call, whose session only the accept creates, a guess). The Calls REST API
(``/v1/realtime/calls...``) is :mod:`~._call_center`'s.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.abc

from .._transport import WebSocket
from ._api_error import (
    BETA_API_SHAPE_DISABLED,
    INVALID_JSON_BODY,
    MISSING_API_KEY,
    MISSING_CREDENTIALS,
    MISSING_MODEL,
    ApiError,
    incorrect_api_key,
    invalid_model,
    invalid_url,
)
from ._brains import Brain, RuleBrain
from ._call_center import CallCenter, call_not_found
from ._calls import LocalCall
from ._connection import Connection
from ._engine import Engine
from ._faults import Faults, FaultsSpec, faults_for
from ._http import HttpRequest, HttpResponse, serve
from ._models import DEFAULT_MODEL, is_known_model
from ._records import ConnectionRecord, prune_closed
from ._session_config import default_session, merge_session
from ._specs import SESSION
from ._validate import Int, Invalid, Lit, Obj, check
from ._wire import Flavor, Ids, parse_json

__all__ = ["ConnectionRecord", "LocalRealtimeServer", "run_server"]

logger = logging.getLogger("rtagent.local")

REALTIME_PATH = "/v1/realtime"
AZURE_REALTIME_PATH = "/openai/v1/realtime"
CLIENT_SECRETS_PATH = "/v1/realtime/client_secrets"

AUTH_CLOSE = 3000
"""Close code after a refused key (the real service's)."""
REQUEST_CLOSE = 4000
"""Close code after a refused request: no or unknown model, the beta header."""

_CLIENT_SECRET_BODY = Obj(
    {
        "expires_after": Obj(
            {"anchor": Lit("created_at"), "seconds": Int(10, 7200)}, required=["anchor"]
        ),
        "session": SESSION,
    }
)


class LocalRealtimeServer:
    """A protocol-faithful GA Realtime server on localhost, for tests and demos.

    Use as ``async with LocalRealtimeServer(brain) as server:`` and point a client at
    ``server.url``. Every connection gets its own session and conversation; the brain
    (and so a ScriptedBrain's script) is shared by all connections.

    Args:
        brain: decides replies; a :class:`RuleBrain` when None.
        api_key: when set, sessions must carry ``Authorization: Bearer <key>`` (or an
            ``api-key`` header, or an ephemeral key minted by ``POST /v1/realtime/client_secrets``);
            others get an ``error`` event and close 3000 after the upgrade, as on the real
            service (``POST /v1/realtime/client_secrets`` answers HTTP 401).
        faults: None, one :class:`Faults` for every connection, a sequence (the i-th
            connection gets ``faults[i]``; none past its end) or a function of the index.
        session_max_seconds: session lifetime (the real limit is 60 minutes).
        audio_chunk_ms: duration of each ``response.output_audio.delta`` chunk.
        host: interface to listen on.
        port: TCP port (0 picks a free one).
        seed: seed of the id generator (the same exchange gives the same ids).
        webrtc: answer WebRTC offers with a real peer (aiortc, the ``webrtc`` extra) so
            media flows; None uses it when installed and the server runs on asyncio
            (aiortc is asyncio-only), False answers with signalling only.

    Attributes:
        calls: the server's SIP and WebRTC calls (:class:`~._call_center.CallCenter`):
            ``await server.calls.ring(webhook_url, secret)`` makes a SIP call ring.
    """

    def __init__(
        self,
        brain: Brain | None = None,
        *,
        api_key: str | None = None,
        faults: FaultsSpec = None,
        session_max_seconds: float = 3600,
        audio_chunk_ms: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | str | None = 0,
        webrtc: bool | None = None,
    ) -> None:
        self.brain: Brain = brain if brain is not None else RuleBrain()
        self.api_key = api_key
        self.faults = faults
        self.session_max_seconds = session_max_seconds
        self.audio_chunk_ms = audio_chunk_ms
        self.host = host
        self.port = port
        self.connections: list[ConnectionRecord] = []
        """Every connection's record, in order; the 64 newest keep their events."""
        self._pruned = 0
        self.ids = Ids(seed)
        self.webrtc = webrtc
        self.calls = CallCenter(self)
        self._secrets: dict[str, tuple[float, dict[str, Any]]] = {}
        self._changed = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to (add ``?model=...``)."""
        return f"ws://{self.host}:{self.port}{REALTIME_PATH}"

    @property
    def http_url(self) -> str:
        """The HTTP base URL (an OpenAI client's ``base_url``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def azure_endpoint(self) -> str:
        """The base of an imitated Azure OpenAI resource (its ``azure_endpoint``)."""
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> LocalRealtimeServer:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg  # calls start tasks here as soon as requests arrive
        try:
            self.port = await tg.start(self._serve)
        except BaseException:
            self._tg = None
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        with anyio.CancelScope(shield=True):
            await self.calls.aclose()
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()
        return await tg.__aexit__(*exc_info)  # type: ignore[arg-type]

    async def _serve(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            http_handler=self._http,
            task_status=task_status,
        )

    async def wait_for(
        self,
        predicate: Callable[[ConnectionRecord], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ConnectionRecord:
        """Wait until ``predicate(record)`` holds for some connection; return that record.

        Raises:
            TimeoutError: it did not hold within ``timeout`` seconds.
        """
        with anyio.fail_after(timeout):
            while True:
                for record in self.connections:
                    if predicate(record):
                        return record
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # ---- what calls use ----------------------------------------------------------------------

    def notify_changed(self) -> None:
        """Wake :meth:`wait_for` (a call changed)."""
        self._notify()

    def spawn(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None
    ) -> None:
        """Run a call's task (its event stream, its media) in the server's task group."""
        if self._tg is None:
            raise RuntimeError(
                "the server is not running: use it as `async with LocalRealtimeServer()`"
            )
        self._tg.start_soon(fn, *args, name=name)

    def call_engine(
        self, model: str, overrides: dict[str, Any], call: LocalCall, *, azure: bool = False
    ) -> Engine:
        """The session of a call: a sideband flavor, its audio played on the call's media."""
        return Engine(
            self.brain,
            ids=self.ids,
            model=model,
            connection_index=len(self.connections),
            flavor=Flavor(azure=azure, sideband=True),
            session_max_seconds=self.session_max_seconds,
            session_overrides=overrides,
            audio_chunk_ms=self.audio_chunk_ms,
            media=call,
        )

    async def media_answer(self, call: LocalCall, offer: str) -> str | None:
        """The SDP answer of a real WebRTC peer for ``call``, or None (signalling only)."""
        if self.webrtc is False:
            return None
        from ._webrtc import answer_with_media

        answer = await answer_with_media(call, offer, self.spawn)
        if answer is None and self.webrtc:
            raise RuntimeError(
                "webrtc=True needs aiortc (pip install 'rtagent[webrtc]') and asyncio"
            )
        return answer

    def secret_session(self, headers: Any) -> dict[str, Any] | None:
        """The session fields bound to the ephemeral client secret in ``headers``, if any."""
        key = self._bearer(headers)
        if key in self._secrets and self._secrets[key][0] > time.time():
            return dict(self._secrets[key][1])
        return None

    def refused_key(self, headers: Any, *, allow_ephemeral: bool) -> ApiError | None:
        """Why a REST call's credentials are refused (answered 401), or None."""
        if self.api_key is not None and not self._bearer(headers):
            return MISSING_API_KEY
        return self._auth_error(headers, allow_ephemeral=allow_ephemeral)

    # ---- HTTP side ---------------------------------------------------------------------------

    def _bearer(self, headers: Any) -> str | None:
        """The key of ``Authorization: Bearer`` or ``api-key`` (any header case)."""
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            return str(auth[7:].strip())
        key = headers.get("api-key")
        return str(key) if key else None

    def _auth_error(self, headers: Any, *, allow_ephemeral: bool) -> ApiError | None:
        """Why these credentials are refused, or None (always None without ``api_key``)."""
        if self.api_key is None:
            return None
        key = self._bearer(headers)
        if key == self.api_key:
            return None
        if allow_ephemeral and key in self._secrets and self._secrets[key][0] > time.time():
            return None
        return incorrect_api_key(key) if key else None

    def _process_request(self, request: HttpRequest) -> HttpResponse | None:
        split = urlsplit(request.path)
        if split.path.rstrip("/") not in (REALTIME_PATH, AZURE_REALTIME_PATH):
            return HttpResponse(404, invalid_url(request.method, split.path).http_body())
        call_id = dict(parse_qsl(split.query)).get("call_id")
        if call_id and self._key_refusal(request.headers) is None:
            call = self.calls.get(call_id)
            if call is None or call.state != "active":
                # No session to attach to: unknown, ringing (not accepted yet) or over.
                logger.info(
                    "sideband refused: call %s is %s", call_id, call.state if call else "unknown"
                )
                return HttpResponse(404, call_not_found().http_body())
        return None  # the upgrade succeeds; a refused session is closed after it

    def _key_refusal(self, headers: Any) -> tuple[ApiError, int] | None:
        if self.api_key is not None:
            if not self._bearer(headers):
                return MISSING_CREDENTIALS, AUTH_CLOSE
            denied = self._auth_error(headers, allow_ephemeral=True)
            if denied is not None:
                return denied, AUTH_CLOSE
        return None

    def _refusal(self, record: ConnectionRecord) -> tuple[ApiError, int] | None:
        """Why the service refuses this session, with the close code, or None."""
        refused = self._key_refusal(record.headers)
        if refused is not None:
            return refused
        if "realtime=v1" in record.headers.get("openai-beta", "").replace(" ", ""):
            return BETA_API_SHAPE_DISABLED, REQUEST_CLOSE
        model = record.query.get("model")
        if not model and not record.query.get("call_id"):
            return MISSING_MODEL, REQUEST_CLOSE
        azure = urlsplit(record.path).path.rstrip("/") == AZURE_REALTIME_PATH
        if model and not azure and not is_known_model(model):
            return invalid_model(model), REQUEST_CLOSE
        return None

    async def _http(self, request: HttpRequest) -> HttpResponse:
        split = urlsplit(request.path)
        if self.calls.serves(request.path):
            return await self.calls.handle(request)
        if request.method != "POST" or split.path.rstrip("/") != CLIENT_SECRETS_PATH:
            return HttpResponse(404, invalid_url(request.method, split.path).http_body())
        denied = self.refused_key(request.headers, allow_ephemeral=False)
        if denied is not None:
            # A REST call: a refused key is an HTTP 401 (not a WebSocket close).
            return HttpResponse(401, denied.http_body())
        try:
            body = parse_json(request.body or b"{}")
            check(_CLIENT_SECRET_BODY, body)
        except ValueError:
            return HttpResponse(400, INVALID_JSON_BODY.http_body())
        except Invalid as exc:
            return HttpResponse(400, ApiError.from_invalid(exc).http_body())
        seconds = body.get("expires_after", {}).get("seconds", 600)
        expires_at = int(time.time() + seconds)
        overrides = body.get("session") or {"type": "realtime"}
        value = "ek_" + secrets.token_hex(16)
        self._secrets[value] = (expires_at, overrides)
        model = str(overrides.get("model", DEFAULT_MODEL))
        session = merge_session(
            default_session(
                model, self.ids.new("sess"), int(time.time() + self.session_max_seconds)
            ),
            overrides,
        )
        payload = {"value": value, "expires_at": expires_at, "session": session}
        return HttpResponse(200, json.dumps(payload).encode())

    # ---- WebSocket side ----------------------------------------------------------------------

    async def _handle(self, ws: WebSocket) -> None:
        request = ws.request
        assert request is not None
        split = urlsplit(request.path)
        record = ConnectionRecord(
            index=len(self.connections),
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.raw_items()},
            query=dict(parse_qsl(split.query)),
        )
        self.connections.append(record)
        self._pruned = prune_closed(self.connections, self._pruned)
        self._notify()
        try:
            refusal = self._refusal(record)
            if refusal is not None:
                await self._refuse(ws, record, *refusal)
                return
            faults = faults_for(self.faults, record.index)
            call_id = record.query.get("call_id")
            if call_id:
                await self._attach(ws, record, call_id, faults)
                return
            lifetime = (
                faults.expire_after if faults.expire_after is not None else self.session_max_seconds
            )
            key = self._bearer(request.headers)
            overrides = self._secrets[key][1] if key in self._secrets else None
            flavor = Flavor(azure=urlsplit(record.path).path.rstrip("/") == AZURE_REALTIME_PATH)
            engine = Engine(
                self.brain,
                ids=self.ids,
                model=record.query.get("model") or DEFAULT_MODEL,
                connection_index=record.index,
                flavor=flavor,
                session_max_seconds=lifetime,
                session_overrides={k: v for k, v in (overrides or {}).items() if k != "model"},
                audio_chunk_ms=self.audio_chunk_ms,
                duplicate_call_ids=faults.duplicate_call_ids,
                auto_response_after_output=faults.auto_response_after_output,
            )
            record.engine = engine
            await Connection(ws, engine, record, faults, lifetime, self._notify).run()
        finally:
            record.closed.set()
            self._notify()

    async def _attach(
        self, ws: WebSocket, record: ConnectionRecord, call_id: str, faults: Faults
    ) -> None:
        """A sideband: share the call's session until the call or the connection ends."""
        call = self.calls.get(call_id)
        if call is None or call.engine is None or call.state != "active":
            await ws.aclose(1000, "")  # the call ended during the handshake
            return
        record.engine = call.engine
        # The call's session has its own lifetime; a fault may still expire this socket.
        lifetime = faults.expire_after if faults.expire_after is not None else math.inf
        connection = Connection(ws, call.engine, record, faults, lifetime, self._notify, hub=call)
        call.attach(connection, record)
        try:
            await connection.run()
        finally:
            call.detach(connection)

    async def _refuse(
        self, ws: WebSocket, record: ConnectionRecord, error: ApiError, close_code: int
    ) -> None:
        """Refuse the session as the real service does: one error event, then the close."""
        event = error.event(self.ids)
        text = json.dumps(event)
        await ws.send(text)
        record.sent.add(event, len(text))
        self._notify()
        reason = f"{error.type}.{error.code}" if error.code else error.type
        logger.info("connection %d: refused (%s, close %d)", record.index, reason, close_code)
        await ws.aclose(close_code, reason)


async def run_server(host: str, port: int, api_key: str | None = None) -> None:
    """Serve a RuleBrain server forever, printing its URL once listening (``rtagent serve``).

    Connections and the type of every event are logged at INFO on ``rtagent.local``
    (never a key, a client secret or a payload); a handler is added when logging is not
    configured.
    """
    logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    async with LocalRealtimeServer(RuleBrain(), api_key=api_key, host=host, port=port) as server:
        print(server.url, flush=True)
        await anyio.sleep_forever()
