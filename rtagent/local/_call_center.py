"""The local server's calls: the Calls REST API and the test's way to make calls ring.

``server.calls`` is a :class:`CallCenter`. Over HTTP it is the real service's Calls API:

* ``POST /v1/realtime/calls``: a WebRTC offer (``application/sdp`` from a browser, or
  ``multipart/form-data`` with ``sdp`` and ``session`` parts from the ``openai``
  package), with an API key or an ephemeral client secret, answered ``201`` with the SDP
  answer and ``Location: /v1/realtime/calls/{call_id}``. CORS lets a page call it, and
  read ``Location``, as on api.openai.com.
* ``POST /v1/realtime/calls/{call_id}/accept`` (the full session config, ``type``
  required, applied to the call), ``/reject`` (``status_code``, default 603),
  ``/refer`` (``target_uri``) and ``/hangup``, answered ``200`` with no body.

The same under ``/openai/v1/`` (Azure). Errors are OpenAI-shaped (``_api_error``).
Recorded or reported by users: an unknown or ended call is ``404 call_id_not_found``
("No session found for the provided call_id"). Guessed (nothing public shows them): the
``400`` of an action on a call in the wrong state (accepting a call twice, referring a
ringing or WebRTC call), of a bad offer, and that the call actions need the API key (an
ephemeral secret may only create a WebRTC call).

For tests, :meth:`CallCenter.ring` makes a SIP call ring and sends its signed
``realtime.call.incoming`` webhook, and :meth:`CallCenter.create` starts a WebRTC call
as a browser would; both return the :class:`~._calls.LocalCall` to drive.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import anyio

from ._api_error import INVALID_JSON_BODY, ApiError, invalid_model, invalid_url
from ._calls import CallKind, LocalCall
from ._http import HttpRequest, HttpResponse
from ._models import DEFAULT_MODEL, is_known_model
from ._sdp import parse_offer, signalling_answer
from ._specs import SESSION
from ._validate import STR, Int, Invalid, Obj, check, without_unset_nulls
from ._wire import parse_json

if TYPE_CHECKING:
    from ._server import LocalRealtimeServer

__all__ = ["CALLS_PATHS", "CallCenter"]

logger = logging.getLogger("rtagent.local")

CALLS_PATHS = ("/v1/realtime/calls", "/openai/v1/realtime/calls")

_CORS = (
    ("Access-Control-Allow-Origin", "*"),
    # A page reads the call id from Location, so it must be exposed to scripts.
    ("Access-Control-Expose-Headers", "Location"),
)
_JSON = (("Content-Type", "application/json"), *_CORS)
_REJECT = Obj({"status_code": Int(400, 699)})
_REFER = Obj({"target_uri": STR}, required=["target_uri"])
_DEFAULT_SIP_HEADERS = (
    ("From", "<sip:+15550100@caller.example>;tag=local"),
    ("To", "<sip:+15550199@sip.api.openai.com>"),
    ("Call-ID", "local-call@caller.example"),
)


def call_not_found() -> ApiError:
    """404 for an unknown or ended call (as users report the real service's)."""
    return ApiError("call_id_not_found", "No session found for the provided call_id")


def _wrong_state(message: str) -> _Refused:
    # Guess: the real service's answer to an action on a call in the wrong state is not public.
    return _Refused(400, ApiError(None, message))


class CallCenter:
    """The calls of one local server: the Calls REST API, ringing, lookups.

    Args:
        server: the server whose keys, brain and task group the calls use.
    """

    def __init__(self, server: LocalRealtimeServer) -> None:
        self._server = server
        self._calls: dict[str, LocalCall] = {}

    def __iter__(self) -> Iterator[LocalCall]:
        return iter(list(self._calls.values()))

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> LocalCall | None:
        """The call with this id, if there was one."""
        return self._calls.get(call_id)

    # ---- for tests -------------------------------------------------------------------------

    async def ring(
        self,
        webhook_url: str | None = None,
        secret: str | None = None,
        *,
        sip_headers: Mapping[str, str] | Sequence[tuple[str, str]] = _DEFAULT_SIP_HEADERS,
    ) -> LocalCall:
        """A SIP call comes in: it rings, and its webhook goes to ``webhook_url``.

        The ``realtime.call.incoming`` event is signed with ``secret`` (``whsec_...``) the
        Standard Webhooks way. Redeliver it (the same ``webhook-id``) with
        :meth:`LocalCall.deliver`.

        Args:
            webhook_url: where the application receives webhooks (None: send none).
            secret: the webhook signing secret.
            sip_headers: the INVITE's headers, in order (a mapping or pairs).

        Raises:
            ConfigurationError: a bad URL or secret.
            OSError: the webhook URL could not be reached.
        """
        pairs = list(sip_headers.items()) if isinstance(sip_headers, Mapping) else list(sip_headers)
        call = self._new("sip", pairs)
        call.webhook = {
            "object": "event",
            "id": "evt_" + self._server.ids.hex(32),
            "type": "realtime.call.incoming",
            "created_at": int(time.time()),
            "data": {
                "call_id": call.id,
                "sip_headers": [{"name": k, "value": v} for k, v in pairs],
            },
        }
        call.webhook_id = "wh_" + self._server.ids.hex(32)
        call.webhook_url, call.webhook_secret = webhook_url, secret
        if webhook_url is not None:
            await call.deliver()
        return call

    def create(
        self,
        session: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        azure: bool = False,
    ) -> LocalCall:
        """A WebRTC call starts, as ``POST /v1/realtime/calls`` starts one (no media here).

        Args:
            session: session fields to start with (as the ``session`` part of the offer).
            model: the model (default: the session's, else the server's default).
            azure: a call of the imitated Azure resource (``/openai/v1/realtime/calls``).
        """
        overrides = dict(session or {})
        chosen = str(model or overrides.pop("model", None) or DEFAULT_MODEL)
        overrides.pop("model", None)
        call = self._new("webrtc", ())
        engine = self._server.call_engine(chosen, overrides, call, azure=azure)
        call.activate(engine, self._server.session_max_seconds)
        return call

    async def aclose(self) -> None:
        """The server stops: every live call ends, and its media is hung up."""
        for call in self:
            call.end("server")
        for call in self:
            if call.peer is not None:
                with anyio.move_on_after(5):
                    await call.peer.aclose()

    # ---- the REST API ----------------------------------------------------------------------

    @staticmethod
    def serves(path: str) -> bool:
        """Whether an HTTP path belongs to the Calls API."""
        clean = urlsplit(path).path.rstrip("/")
        return any(clean == p or clean.startswith(p + "/") for p in CALLS_PATHS)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer a Calls API request (see the module docstring)."""
        split = urlsplit(request.path)
        clean = split.path.rstrip("/")
        base = next(p for p in CALLS_PATHS if clean == p or clean.startswith(p + "/"))
        rest = [unquote(part) for part in clean[len(base) :].split("/") if part]
        if request.method == "OPTIONS":
            return self._preflight()
        if request.method != "POST" or len(rest) not in (0, 2):
            return HttpResponse(404, invalid_url(request.method, split.path).http_body(), _JSON)
        denied = self._server.refused_key(request.headers, allow_ephemeral=not rest)
        if denied is not None:
            return HttpResponse(401, denied.http_body(), _JSON)
        try:
            if not rest:
                return await self._create(request)
            call_id, action = rest
            handler = {
                "accept": self._accept,
                "reject": self._reject,
                "refer": self._refer,
                "hangup": self._hangup,
            }.get(action)
            if handler is None:
                return HttpResponse(404, invalid_url(request.method, split.path).http_body(), _JSON)
            call = self._calls.get(call_id)
            if call is None or not call.is_live:
                response = HttpResponse(404, call_not_found().http_body(), _JSON)
            else:
                response = _answer(handler, call, request)
            if call is not None:
                call.requests.append((action, response.status))
            return response
        except _Refused as exc:
            return HttpResponse(exc.status, exc.error.http_body(), _JSON)
        except Invalid as exc:
            return HttpResponse(400, ApiError.from_invalid(exc).http_body(), _JSON)

    @staticmethod
    def _preflight() -> HttpResponse:
        """CORS preflight: a page may POST an offer with its bearer key."""
        headers = (
            *_CORS,
            ("Access-Control-Allow-Methods", "POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type, OpenAI-Beta"),
            ("Access-Control-Max-Age", "600"),
        )
        return HttpResponse(204, b"", headers)

    async def _create(self, request: HttpRequest) -> HttpResponse:
        """``POST /v1/realtime/calls``: an offer in, an answer and the call's Location out."""
        sdp, part = _offer_parts(request)
        overrides = dict(self._server.secret_session(request.headers) or {})
        if part is not None:
            overrides.update(_checked_session(part))
        model = str(overrides.pop("model", DEFAULT_MODEL))
        if not is_known_model(model):
            raise _Refused(400, invalid_model(model))
        offer = parse_offer(sdp)
        call = self._new("webrtc", ())
        azure = request.path.startswith("/openai/")
        engine = self._server.call_engine(model, overrides, call, azure=azure)
        call.activate(engine, self._server.session_max_seconds)
        try:
            answer = await self._server.media_answer(call, sdp)
        except BaseException:
            call.end("server")
            raise
        if answer is None:
            answer = signalling_answer(offer, self._server.ids)  # no WebRTC stack: signalling only
        location = f"{'/openai' if azure else ''}/v1/realtime/calls/{call.id}"
        headers = (("Content-Type", "application/sdp"), ("Location", location), *_CORS)
        logger.info(
            "call %s created over WebRTC (%s)", call.id, "media" if call.peer else "signalling only"
        )
        return HttpResponse(201, answer.encode(), headers)

    def _accept(self, call: LocalCall, body: Any) -> None:
        if call.kind != "sip":
            raise _wrong_state(
                f"Call {call.id} is a WebRTC call: only incoming SIP calls are accepted."
            )
        if call.state != "ringing":
            raise _wrong_state(f"Call {call.id} has already been accepted.")
        session = _checked_session(body)
        model = str(session.pop("model", DEFAULT_MODEL))
        if not is_known_model(model):
            raise _Refused(400, invalid_model(model))
        call.activate(
            self._server.call_engine(model, session, call), self._server.session_max_seconds
        )
        logger.info("call %s accepted", call.id)

    def _reject(self, call: LocalCall, body: Any) -> None:
        body = {} if body is None else body
        check(_REJECT, body)
        if call.state != "ringing":
            raise _wrong_state(
                f"Call {call.id} is not ringing: only a ringing call can be rejected."
            )
        call.reject(int(body.get("status_code", 603)))
        logger.info("call %s rejected (%d)", call.id, call.rejected_with)

    def _refer(self, call: LocalCall, body: Any) -> None:
        check(_REFER, body)
        target = str(body["target_uri"])
        if not target.startswith(("tel:", "sip:", "sips:")):
            raise Invalid(
                "invalid_value",
                "Invalid 'target_uri': expected a tel:, sip: or sips: URI.",
                "target_uri",
            )
        if call.kind != "sip" or call.state != "active":
            raise _wrong_state(
                f"Call {call.id} is not an active SIP call: it cannot be transferred."
            )
        call.referred_to = target
        # The caller now talks to the target: the Realtime session of the call is over.
        call.end("refer")

    def _hangup(self, call: LocalCall, body: Any) -> None:
        call.end("hangup")

    def _new(self, kind: CallKind, sip_headers: Sequence[tuple[str, str]]) -> LocalCall:
        call_id = "rtc_" + self._server.ids.hex(32)
        call = LocalCall(
            call_id,
            kind,
            sip_headers=sip_headers,
            spawn=self._server.spawn,
            notify=self._server.notify_changed,
        )
        self._calls[call_id] = call
        return call


def _answer(
    handler: Callable[[LocalCall, Any], None], call: LocalCall, request: HttpRequest
) -> HttpResponse:
    """Run one call action; its success is ``200`` with no body, as the real API answers."""
    try:
        handler(call, _json_body(request))
    except _Refused as exc:
        return HttpResponse(exc.status, exc.error.http_body(), _JSON)
    except Invalid as exc:
        return HttpResponse(400, ApiError.from_invalid(exc).http_body(), _JSON)
    return HttpResponse(200, b"", _CORS)


class _Refused(Exception):
    """An API error answered with an HTTP status."""

    def __init__(self, status: int, error: ApiError) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


def _json_body(request: HttpRequest) -> Any:
    if not request.body.strip():
        return None
    try:
        return parse_json(request.body)
    except ValueError:
        raise _Refused(400, INVALID_JSON_BODY) from None


def _checked_session(body: Any) -> dict[str, Any]:
    """A session config as accept and the offer's ``session`` part take it (``type`` required)."""
    if body is None:
        raise Invalid("missing_required_parameter", "Missing required parameter: 'type'.", "type")
    cleaned = without_unset_nulls(SESSION, body)
    check(SESSION, cleaned)
    return dict(cleaned)


def _offer_parts(request: HttpRequest) -> tuple[str, Any]:
    """The SDP offer and the optional ``session`` JSON of ``POST /v1/realtime/calls``."""
    kind = request.headers.get("Content-Type") or request.headers.get("content-type") or ""
    mime = kind.split(";")[0].strip().lower()
    if mime == "application/sdp":
        return request.body.decode("utf-8", "replace"), None
    if mime != "multipart/form-data":
        # Guess: the real service's answer to another content type is not public.
        raise _Refused(
            400,
            ApiError(
                None,
                "Send the SDP offer as application/sdp or as multipart/form-data (sdp, session).",
            ),
        )
    head = f"Content-Type: {kind}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    if "sdp" not in parts:
        raise Invalid("missing_required_parameter", "Missing required parameter: 'sdp'.", "sdp")
    session = None
    if "session" in parts:
        try:
            session = parse_json(parts["session"])
        except ValueError:
            raise _Refused(400, INVALID_JSON_BODY) from None
    return parts["sdp"].decode("utf-8", "replace"), session
