"""Brains decide what the local server's "model" says: scripted or rule-based.

A brain sees a :class:`Conversation` (the context items of one response plus the
effective instructions and tools) and returns a :class:`Turn`: text, function
calls, or a failure. Brains are pure and deterministic; the engine turns a Turn
into the exact GA event stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

__all__ = ["Brain", "Call", "Conversation", "RuleBrain", "ScriptedBrain", "Turn"]


@dataclass(frozen=True)
class Call:
    """One function call the model makes, or a call to a hosted MCP server's tool.

    Attributes:
        name: the tool name.
        arguments: a dict (serialised to JSON) or a raw string sent verbatim
            (use a string to test malformed arguments).
        call_id: fixed call id; by default the server numbers them ``call_1``, ``call_2``...
        server_label: set for a hosted MCP tool (``{"type": "mcp"}`` in the session's
            tools): the server calls it itself, or asks for approval first.
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    call_id: str | None = None
    server_label: str | None = None

    def arguments_json(self) -> str:
        """The arguments as the JSON string the wire carries."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class Conversation:
    """What the model sees for one response.

    Attributes:
        items: the context items (the default conversation, or ``response.input``),
            as server-side item dicts.
        instructions: effective instructions of this response.
        tools: effective tool definitions (flat GA shape).
        tool_choice: effective tool choice.
        connection_index: which connection of the server asks (0-based).
    """

    items: list[dict[str, Any]]
    instructions: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    connection_index: int = 0

    @property
    def last_item(self) -> dict[str, Any] | None:
        """The newest context item, if any."""
        return self.items[-1] if self.items else None

    @property
    def last_user_text(self) -> str:
        """Text of the newest user message (input_text, or audio transcripts)."""
        for item in reversed(self.items):
            if item.get("type") == "message" and item.get("role") == "user":
                return message_text(item)
        return ""

    @property
    def trailing_outputs(self) -> list[dict[str, Any]]:
        """The function_call_output items at the end of the context, oldest first."""
        out: list[dict[str, Any]] = []
        for item in reversed(self.items):
            if item.get("type") != "function_call_output":
                break
            out.append(item)
        return out[::-1]

    @property
    def last_output(self) -> str | None:
        """The ``output`` string of the newest function_call_output, if any."""
        for item in reversed(self.items):
            if item.get("type") == "function_call_output":
                return str(item.get("output", ""))
        return None

    @property
    def mcp_tools(self) -> list[dict[str, Any]]:
        """The hosted MCP tools listed in the context (``mcp_list_tools`` items of servers
        still in ``tools``), as flat tool definitions with their ``server_label``."""
        labels = {t.get("server_label") for t in self.tools if t.get("type") == "mcp"}
        found = []
        for item in self.items:
            if item.get("type") == "mcp_list_tools" and item.get("server_label") in labels:
                for tool in item.get("tools") or ():
                    found.append({
                        "type": "function", "name": tool.get("name"),
                        "description": tool.get("description") or "",
                        "parameters": tool.get("input_schema") or {},
                        "server_label": item["server_label"],
                    })
        return found

    def call_name(self, call_id: str) -> str | None:
        """The tool name of the function_call with this call_id."""
        for item in self.items:
            if item.get("type") == "function_call" and item.get("call_id") == call_id:
                return str(item.get("name"))
        return None


def message_text(item: dict[str, Any]) -> str:
    """Concatenated text of a message item's content parts."""
    parts = []
    for part in item.get("content") or []:
        text = part.get("text") if part.get("type") in ("input_text", "output_text") else None
        if text is None:
            text = part.get("transcript")
        if text:
            parts.append(str(text))
    return " ".join(parts)


TextSource = Union[str, Callable[[Conversation], str], None]


@dataclass(frozen=True)
class Turn:
    """One scripted response.

    Attributes:
        text: the reply text (or a function of the conversation computing it).
            With calls, it is a preamble message before them.
        calls: function calls made in this response, in order.
        fail: end the response with ``status: "failed"``; a string sets the message.
    """

    text: TextSource = None
    calls: Sequence[Call] = ()
    fail: bool | str = False

    def resolve(self, convo: Conversation) -> Turn:
        """This turn with a computed text evaluated."""
        if callable(self.text):
            return Turn(text=self.text(convo), calls=tuple(self.calls), fail=self.fail)
        return self


class Brain(Protocol):
    """Anything that decides one response from its context."""

    def reply(self, convo: Conversation) -> Turn:
        """Return the turn for this response (text must already be a string)."""
        ...


def summarise_outputs(convo: Conversation) -> str:
    """A sentence using the trailing function outputs (or the last one)."""
    outputs = convo.trailing_outputs
    if not outputs and convo.last_output is not None:
        return f"The result is: {convo.last_output}"
    pieces = []
    for item in outputs:
        name = convo.call_name(str(item.get("call_id"))) or "the tool"
        pieces.append(
            f"{name.replace('_', ' ')} returned {_render_output(str(item.get('output', '')))}"
        )
    return ("Here is what I found: " + "; ".join(pieces) + ".") if pieces else "OK"


def _render_output(output: str) -> str:
    try:
        value = json.loads(output)
    except ValueError:
        return output.strip() or "nothing"
    if isinstance(value, dict):
        return (
            ", ".join(f"{k.replace('_', ' ')} {_render_value(v)}" for k, v in value.items())
            or "nothing"
        )
    return _render_value(value)


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


class ScriptedBrain:
    """Plays a fixed list of turns, one per response, across all connections of a server.

    When the script runs out it replies with a summary of the last function output
    (or ``"OK"``), so a runtime's follow-up responses always get an answer.
    """

    def __init__(self, turns: Iterable[Turn] = ()) -> None:
        self.turns: list[Turn] = list(turns)
        self.position = 0

    @property
    def exhausted(self) -> bool:
        """True once every scripted turn has been played."""
        return self.position >= len(self.turns)

    def reply(self, convo: Conversation) -> Turn:
        """The next scripted turn, or a summary of the last output when exhausted."""
        if self.exhausted:
            return Turn(text=summarise_outputs(convo) if convo.last_output is not None else "OK")
        turn = self.turns[self.position]
        self.position += 1
        return turn.resolve(convo)


# --- RuleBrain ---------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "from",
        "by",
        "at",
        "is",
        "are",
        "be",
        "this",
        "that",
        "it",
        "its",
        "as",
        "into",
        "your",
        "you",
        "get",
        "gets",
        "set",
        "sets",
        "return",
        "returns",
        "current",
        "given",
        "some",
        "any",
        "about",
        "what",
        "which",
        "when",
        "where",
        "how",
    ]
)
_GREETINGS = ("hello", "hi", "hey", "good morning", "good evening", "ahoy")
_PREPOSITIONS = ("in", "for", "to", "at", "from", "of", "near", "called", "named")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|(?<!\w)'([^']+)'(?!\w)")
_CAPITALISED = r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class RuleBrain:
    """A deterministic stand-in model for demos and offline tests.

    Rules, in order:

    * the context ends with function outputs: reply with a sentence using them;
    * the last item is a user message: call the declared tool the user names (its name
      with ``_`` as spaces, or words of its description) with arguments filled from the
      text using the tool's JSON schema, skipping tools whose required arguments cannot
      be filled;
    * otherwise reply in plain text: a greeting for "hello", else a sentence saying what
      this stand-in cannot do (answer freely) and which tools it could call; it never
      repeats the user's words as if it had understood them. Instructions that mention
      pirates get pirate speech.
    """

    def reply(self, convo: Conversation) -> Turn:
        """Decide the turn for this context."""
        pirate = "pirate" in convo.instructions.lower()
        if convo.trailing_outputs:
            return Turn(text=_flavour(summarise_outputs(convo), pirate))
        last = convo.last_item
        if last is not None and last.get("type") == "message" and last.get("role") == "user":
            text = message_text(last)
            call = self._pick_call(text, convo)
            if call is not None:
                return Turn(calls=[call])
            return Turn(text=self._chat(text, pirate, convo))
        if last is not None and last.get("type") == "function_call":
            return Turn(
                text=_flavour(f"I am waiting for the result of {last.get('name')}.", pirate)
            )
        if last is not None and last.get("type") == "message" and last.get("role") == "system":
            # A note the application added (a background tool's result, say): pass it on.
            return Turn(text=_flavour(f"An update: {message_text(last)}", pirate))
        return Turn(text=self._chat("", pirate, convo))

    def _chat(self, text: str, pirate: bool, convo: Conversation) -> str:
        words = _words(text)
        lowered = " ".join(words)
        if not words or any(
            lowered.startswith(g) or f" {g} " in f" {lowered} " for g in _GREETINGS
        ):
            return (
                "Ahoy, matey! How can I help ye today?"
                if pirate
                else "Hello! How can I help you today?"
            )
        names = [str(t["name"]) for t in _callable(convo)]
        can = (
            f"I can only call the tools you name ({', '.join(names)}) with what you say."
            if names
            else "I have no tools to call here."
        )
        return _flavour(
            "I cannot answer that: I am the local server's rule-based stand-in for a model, "
            f"not a real one. {can}",
            pirate,
        )

    def _pick_call(self, text: str, convo: Conversation) -> Call | None:
        choice = convo.tool_choice
        if choice == "none":
            return None
        tools = _callable(convo)
        forced = (
            choice.get("name")
            if isinstance(choice, dict) and choice.get("type") == "function"
            else None
        )
        lowered = " ".join(_words(text))
        scored: list[tuple[int, int, dict[str, Any]]] = []
        for order, tool in enumerate(tools):
            if forced is not None:
                score = 100 if tool["name"] == forced else 0
            else:
                score = _score(tool, lowered)
                if choice == "required":
                    score += 1
            if score > 0:
                scored.append((-score, order, tool))
        for _, _, tool in sorted(scored, key=lambda s: (s[0], s[1])):
            args = fill_arguments(tool, text)
            if args is not None:
                return Call(tool["name"], args, server_label=tool.get("server_label"))
        return None


def _callable(convo: Conversation) -> list[dict[str, Any]]:
    """The function tools, then the hosted MCP servers' listed tools."""
    functions = [
        t for t in convo.tools if t.get("type", "function") == "function" and t.get("name")
    ]
    return functions + [t for t in convo.mcp_tools if t.get("name")]


def _score(tool: dict[str, Any], lowered: str) -> int:
    name_words = _words(str(tool["name"]).replace("_", " "))
    padded = f" {lowered} "
    if name_words and f" {' '.join(name_words)} " in padded:
        return 10 + len(name_words)
    significant = {
        w for w in _words(str(tool.get("description") or "")) if len(w) >= 4 and w not in _STOPWORDS
    }
    significant |= {w for w in name_words if len(w) >= 4 and w not in _STOPWORDS}
    text_words = set(lowered.split())
    stems = {w.rstrip("s") for w in text_words}
    return sum(1 for w in significant if w in text_words or w.rstrip("s") in stems)


def fill_arguments(tool: dict[str, Any], text: str) -> dict[str, Any] | None:
    """Fill a tool's arguments from free text using its JSON schema; None if a required one is missing."""
    schema = tool.get("parameters") or {}
    props: dict[str, Any] = schema.get("properties") or {}
    required: list[str] = list(schema.get("required") or [])
    args: dict[str, Any] = {}
    numbers = [m.group(0) for m in _NUMBER.finditer(text)]
    quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
    after_prep = [
        m.group(1)
        for m in re.finditer(
            rf"\b(?:{'|'.join(_PREPOSITIONS)})\s+(?:the\s+)?({_CAPITALISED})", text
        )
    ]
    strings = quoted + [s for s in after_prep if s not in quoted]
    lowered_words = set(_words(text))

    for name, prop in props.items():
        explicit = re.search(
            rf"\b{re.escape(name)}\s*(?:=|:|is|of)?\s*\"?([\w.-]+)\"?", text, re.IGNORECASE
        )
        kind = _prop_type(prop)
        if "enum" in prop:
            hits = [v for v in prop["enum"] if isinstance(v, str) and v.lower() in lowered_words]
            if hits:
                args[name] = hits[0]
            continue
        if kind in ("number", "integer"):
            if numbers:
                raw = numbers.pop(0)
                value = float(raw)
                args[name] = int(value) if kind == "integer" or value.is_integer() else value
            continue
        if kind == "boolean":
            if explicit and explicit.group(1).lower() in ("true", "yes", "false", "no"):
                args[name] = explicit.group(1).lower() in ("true", "yes")
            continue
        if kind == "string" and strings:
            args[name] = strings.pop(0)

    string_props = [n for n, p in props.items() if _prop_type(p) == "string" and "enum" not in p]
    if len(string_props) == 1 and string_props[0] not in args:
        rest = _remaining_text(tool, text)
        if rest:
            args[string_props[0]] = rest
    if any(r not in args for r in required):
        return None
    return args


def _prop_type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        for option in prop.get("anyOf") or []:
            if isinstance(option, dict) and option.get("type") not in (None, "null"):
                return str(option["type"])
        return "string" if "enum" not in prop else "enum"
    return str(kind)


def _remaining_text(tool: dict[str, Any], text: str) -> str:
    rest = text.strip()
    name_phrase = str(tool["name"]).replace("_", " ")
    idx = rest.lower().find(name_phrase.lower())
    if idx < 0:  # only text that follows the tool's name is an argument
        return ""
    rest = rest[idx + len(name_phrase) :]
    rest = re.sub(
        r"^[\s:,-]*(?:please\s+)?(?:back\s+)?(?:the\s+(?:text|words?)\s+)?",
        "",
        rest,
        flags=re.IGNORECASE,
    )
    return rest.strip().strip("\"'").rstrip(".!?").strip()


def _flavour(text: str, pirate: bool) -> str:
    if not pirate:
        return text
    swapped = re.sub(r"\byou\b", "ye", re.sub(r"\byour\b", "yer", text))
    return f"Arr! {swapped} Yo ho ho!"
