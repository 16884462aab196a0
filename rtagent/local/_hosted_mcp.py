"""Hosted MCP tools, emulated: the local server calls real MCP servers for the "model".

Sans-I/O, like the engine: what needs the network (listing a server's tools, calling
one) becomes an :class:`McpJob` that the connection runs (``_mcp_client.perform``) and
hands back; the events it leads to are generated here.

What the emulation does, following the ``openai`` types (the order of events is a guess
where no public source shows it; each guess is marked):

* ``session.update`` with ``{"type": "mcp"}`` tools: each new or changed server is
  listed: ``mcp_list_tools.in_progress``, the real ``tools/list``, then the
  ``mcp_list_tools`` item (``conversation.item.added``/``.done``) and
  ``mcp_list_tools.completed``, or ``mcp_list_tools.failed`` with no item (guess). The
  ``authorization`` and ``headers`` of a server are kept here and left out of the session
  that ``session.updated`` reports (guess: the service does not echo credentials).
* A brain's :class:`~._brains.Call` with a ``server_label``, in a response: an
  ``mcp_call`` item (``response.output_item.added``), ``response.mcp_call_arguments.delta``
  / ``.done``, ``response.mcp_call.in_progress``, the real ``tools/call``, then
  ``response.mcp_call.completed`` or ``.failed`` and the item done with its ``output`` or
  ``error``. After its MCP calls the response says what they returned (the real model
  would go on speaking; here a summary sentence stands in for it).
* When ``require_approval`` asks (unset means "always", as the service's default), the
  response carries an ``mcp_approval_request`` item instead (no deltas) and ends. A
  later response whose context ends with ``mcp_approval_response`` items answers them
  without asking the brain: an approved request is called (an ``mcp_call`` with its
  ``approval_request_id``), a rejected one is not, and a sentence says so.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .._redact import register_secret
from ._brains import Call, Conversation, Turn
from ._conversation_store import ConversationStore
from ._wire import Event, Ids, server_event

__all__ = [
    "PENDING",
    "ApprovedCall",
    "HostedCalls",
    "HostedServers",
    "McpJob",
    "McpOutcome",
    "McpResult",
    "Pending",
]

_SECRETS = ("authorization", "headers")
_CALL_ERROR_UNKNOWN = -32602  # JSON-RPC "invalid params": MCP's code for an unknown tool


class Pending:
    """What a response's stream yields while it waits for an MCP server (nothing to send)."""

    def __repr__(self) -> str:
        return "PENDING"


PENDING = Pending()


@dataclass(frozen=True)
class ApprovedCall(Call):
    """A hosted MCP call a person approved: it runs without asking again."""

    approval_request_id: str | None = None


@dataclass
class McpResult:
    """What an MCP server answered: tools for a listing, output or error for a call.

    ``error`` is the ``mcp_call`` item's error object (``protocol_error``,
    ``tool_execution_error`` or ``http_error``), or for a listing the reason it failed.
    """

    tools: list[dict[str, Any]] = field(default_factory=list)
    output: str | None = None
    error: dict[str, Any] | None = None


@dataclass(eq=False)
class McpJob:
    """Network work for the connection: list a server's tools, or call one.

    Attributes:
        kind: ``"list"`` or ``"call"``.
        server: The server's ``mcp`` tool entry, with its credentials.
        tool: The tool to call.
        arguments: Its arguments.
        result: Set by the connection when the server has answered.
        finished: Called with the job once ``result`` is set; returns the events to send.
    """

    kind: Literal["list", "call"]
    server: dict[str, Any] = field(repr=False)  # it holds the credentials
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    result: McpResult | None = None
    finished: Callable[[McpJob], list[Event]] = field(default=lambda _job: [], repr=False)


@dataclass
class McpOutcome:
    """How one hosted call of a response ended (for the sentence that follows the calls)."""

    name: str
    output: str | None = None
    error: str | None = None
    asked: bool = False
    """An approval was requested instead of a call."""


@dataclass
class _Server:
    config: dict[str, Any] = field(repr=False)  # it holds the credentials
    item_id: str = ""
    tools: list[dict[str, Any]] | None = None
    """The listed tools (allowed ones only); None until listed, or when listing failed."""

    @property
    def label(self) -> str:
        return str(self.config["server_label"])

    def tool(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self.tools or () if t["name"] == name), None)

    def needs_approval(self, tool: dict[str, Any]) -> bool:
        policy = self.config.get("require_approval")
        if policy in (None, "always"):
            return True
        if policy == "never" or not isinstance(policy, dict):
            return False
        if _matches(policy.get("never"), tool):
            return False
        if _matches(policy.get("always"), tool):
            return True
        return True  # guess: a tool no filter names is asked about, like the default


def _matches(spec: Any, tool: dict[str, Any]) -> bool:
    """Whether a tool filter (``tool_names`` / ``read_only``, or a list of names) names it."""
    if isinstance(spec, list):
        return tool["name"] in spec
    if not isinstance(spec, dict):
        return False
    names, read_only = spec.get("tool_names"), spec.get("read_only")
    if names is None and read_only is None:
        return False
    hint = bool((tool.get("annotations") or {}).get("readOnlyHint", False))
    return (names is None or tool["name"] in names) and (read_only is None or read_only == hint)


class HostedServers:
    """The hosted MCP servers of one connection: their config, listing and approvals.

    Args:
        ids: id factory (item and event ids).
        store: the default conversation (``mcp_list_tools`` items enter it).
    """

    def __init__(self, ids: Ids, store: ConversationStore) -> None:
        self._ids = ids
        self._store = store
        self._servers: dict[str, _Server] = {}
        self._secrets: dict[str, dict[str, Any]] = {}
        self.jobs: list[McpJob] = []
        """Work for the connection, taken with :meth:`take_jobs`."""

    def take_jobs(self) -> list[McpJob]:
        """The jobs created since the last call."""
        jobs, self.jobs = self.jobs, []
        return jobs

    def server(self, label: str | None) -> _Server | None:
        return self._servers.get(label) if label is not None else None

    # ---- session.update ----------------------------------------------------------------

    def absorb(self, update: dict[str, Any]) -> dict[str, Any]:
        """A ``session.update``'s session without the MCP credentials, which are kept here."""
        tools = update.get("tools")
        if not isinstance(tools, list):
            return update
        update = copy.deepcopy(update)
        self._secrets = {}
        for tool in update["tools"]:
            if tool.get("type") == "mcp":
                kept = {k: tool.pop(k) for k in _SECRETS if k in tool}
                self._secrets[str(tool["server_label"])] = kept
                for secret in [kept.get("authorization"), *(kept.get("headers") or {}).values()]:
                    if isinstance(secret, str):
                        register_secret(secret)  # the protocol logs of this process blank it
        return update

    def configure(self, tools: list[dict[str, Any]]) -> list[Event]:
        """The session's tools changed: list each new or changed MCP server's tools."""
        wanted = {
            str(t["server_label"]): {**t, **self._secrets.get(str(t["server_label"]), {})}
            for t in tools
            if t.get("type") == "mcp"
        }
        for label in [label for label in self._servers if label not in wanted]:
            del self._servers[label]
        out: list[Event] = []
        for label, config in wanted.items():
            current = self._servers.get(label)
            if current is not None and current.config == config:
                continue
            server = self._servers[label] = _Server(config, self._store.new_item_id())
            out.append(self._event("mcp_list_tools.in_progress", item_id=server.item_id))
            if not config.get("server_url"):
                # Connectors and tunnels are the service's own; the local server has none.
                out.append(self._event("mcp_list_tools.failed", item_id=server.item_id))
                continue
            self.jobs.append(McpJob("list", config, finished=functools.partial(self._listed, server)))
        return out

    def _listed(self, server: _Server, job: McpJob) -> list[Event]:
        if self._servers.get(server.label) is not server or job.result is None:
            return []  # replaced or removed while it was being listed
        if job.result.error is not None:
            return [self._event("mcp_list_tools.failed", item_id=server.item_id)]
        allowed = server.config.get("allowed_tools")
        server.tools = [t for t in job.result.tools if allowed is None or _matches(allowed, t)]
        item = {
            "id": server.item_id,
            "type": "mcp_list_tools",
            "server_label": server.label,
            "tools": copy.deepcopy(server.tools),
        }
        # Guess, after a compatible service's documentation: the item first, then the event.
        out = self._store.insert(item)
        out.append(self._store.done(item))
        out.append(self._event("mcp_list_tools.completed", item_id=server.item_id))
        return out

    # ---- approvals ---------------------------------------------------------------------

    def answer_decisions(self, convo: Conversation) -> Turn | None:
        """The turn for a context that ends with ``mcp_approval_response`` items, else None."""
        decisions: list[dict[str, Any]] = []
        for item in reversed(convo.items):
            if item.get("type") != "mcp_approval_response":
                break
            decisions.insert(0, item)
        if not decisions:
            return None
        requests = {i.get("id"): i for i in convo.items if i.get("type") == "mcp_approval_request"}
        calls: list[Call] = []
        refusals: list[str] = []
        for decision in decisions:
            request = requests.get(decision.get("approval_request_id"))
            if request is None:
                continue
            if decision.get("approve"):
                calls.append(ApprovedCall(
                    str(request["name"]), str(request.get("arguments") or "{}"),
                    server_label=str(request["server_label"]),
                    approval_request_id=str(request["id"]),
                ))
            else:
                why = f" ({decision['reason']})" if decision.get("reason") else ""
                refusals.append(f"I did not run {request['name']}: it was not approved{why}.")
        return Turn(text=" ".join(refusals) or None, calls=calls)

    def _event(self, type: str, **fields: Any) -> Event:
        return server_event(self._ids, type, **fields)


class _OpenItem(Protocol):
    item: dict[str, Any]
    output_index: int


class _Run(Protocol):
    id: str

    @property
    def open(self) -> list[Any]: ...


class HostedCalls:
    """Streams the hosted MCP calls of a response (the events around each real call).

    Args:
        servers: the connection's hosted servers.
        ids: id factory.
        new_item_id: a fresh conversation item id.
        open_item: starts an output item (``response.output_item.added``...).
        close_item: ends one (``conversation.item.done``, ``response.output_item.done``).
    """

    def __init__(
        self,
        servers: HostedServers,
        ids: Ids,
        new_item_id: Callable[[], str],
        open_item: Callable[[Any, dict[str, Any]], Iterator[Event]],
        close_item: Callable[[Any, Any, str | None], list[Event]],
    ) -> None:
        self.servers = servers
        self._ids = ids
        self._new_item_id = new_item_id
        self._open_item = open_item
        self._close_item = close_item

    def stream(
        self, run: _Run, call: Call, arguments: str
    ) -> Generator[Event | Pending, None, McpOutcome]:
        """The events of one hosted call (or of its approval request)."""
        server = self.servers.server(call.server_label)
        tool = server.tool(call.name) if server is not None else None
        label = str(call.server_label)
        approval_id = call.approval_request_id if isinstance(call, ApprovedCall) else None
        if approval_id is None and server is not None and tool is not None and server.needs_approval(tool):
            request = {
                "id": self._new_item_id(), "type": "mcp_approval_request",
                "server_label": label, "name": call.name, "arguments": arguments,
            }
            yield from self._open_item(run, request)
            yield from self._close_item(run, run.open[-1], None)
            return McpOutcome(call.name, asked=True)
        item: dict[str, Any] = {
            "id": self._new_item_id(), "type": "mcp_call", "server_label": label,
            "name": call.name, "arguments": "", "approval_request_id": approval_id,
            "output": None, "error": None,
        }
        yield from self._open_item(run, item)
        cur: _OpenItem = run.open[-1]
        where = {"response_id": run.id, "item_id": item["id"], "output_index": cur.output_index}
        step = max(1, math.ceil(len(arguments) / 3))
        for start in range(0, len(arguments), step):
            delta = arguments[start : start + step]
            item["arguments"] += delta
            yield self._event(
                "response.mcp_call_arguments.delta", **where, delta=delta,
                obfuscation=self._ids.obfuscation(delta),
            )
        item["arguments"] = arguments
        yield self._event("response.mcp_call_arguments.done", **where, arguments=arguments)
        at = {"item_id": item["id"], "output_index": cur.output_index}
        yield self._event("response.mcp_call.in_progress", **at)
        result = yield from self._call(server, tool, call.name, arguments)
        if result.error is not None:
            item["error"] = result.error
            yield self._event("response.mcp_call.failed", **at)
        else:
            item["output"] = result.output or ""
            yield self._event("response.mcp_call.completed", **at)
        yield from self._close_item(run, cur, None)
        error = str(result.error.get("message", "")) if result.error is not None else None
        return McpOutcome(call.name, output=item["output"], error=error)

    def _call(
        self, server: _Server | None, tool: dict[str, Any] | None, name: str, arguments: str
    ) -> Generator[Pending, None, McpResult]:
        if server is None or tool is None:
            where = f"MCP server {server.label}" if server is not None else "no MCP server"
            return McpResult(error={
                "type": "protocol_error", "code": _CALL_ERROR_UNKNOWN,
                "message": f"Unknown tool {name!r} ({where})",
            })
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):
            return McpResult(error={
                "type": "protocol_error", "code": _CALL_ERROR_UNKNOWN,
                "message": "The arguments are not a JSON object",
            })
        job = McpJob("call", server.config, tool=name, arguments=args)
        self.servers.jobs.append(job)
        while job.result is None:
            yield PENDING
        return job.result

    def _event(self, type: str, **fields: Any) -> Event:
        return server_event(self._ids, type, **fields)


def summary(outcomes: list[McpOutcome]) -> str | None:
    """What a response says after its hosted calls (None when it asked for approval)."""
    if not outcomes or any(o.asked for o in outcomes):
        return None
    parts = []
    for outcome in outcomes:
        name = outcome.name.replace("_", " ")
        if outcome.error is not None:
            parts.append(f"{name} failed: {outcome.error}")
        else:
            parts.append(f"{name} returned {outcome.output or 'nothing'}")
    return "Here is what I found: " + "; ".join(parts) + "."
