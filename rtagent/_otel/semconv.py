"""Names from the OpenTelemetry GenAI semantic conventions, and rtagent's own.

Written out here rather than imported from ``opentelemetry-semantic-conventions``: the
GenAI names live in its unstable ``_incubating`` package, and only ``opentelemetry-api``
is needed at run time.
"""

from __future__ import annotations

# -- attributes (GenAI semantic conventions) ---------------------------------------------

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"
"""Deprecated in favour of ``gen_ai.provider.name``; still set for older backends."""
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
CONVERSATION_ID = "gen_ai.conversation.id"
AGENT_NAME = "gen_ai.agent.name"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
TOKEN_TYPE = "gen_ai.token.type"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# -- rtagent's attributes ----------------------------------------------------------------

TURN_OUTCOME = "rtagent.turn.outcome"
"""How a user turn ended: completed, interrupted, failed, incomplete or session_closed."""
TURN_RESPONSES = "rtagent.turn.responses"
"""Responses the turn took (one per tool round, plus the answer)."""
TURN_TOOL_CALLS = "rtagent.turn.tool_calls"
RESPONSE_STATUS = "rtagent.response.status"
"""The Realtime ``response.status`` (completed, cancelled, incomplete, failed), or
``connection_lost`` / ``session_closed`` when it never finished."""
RESPONSE_OUT_OF_BAND = "rtagent.response.out_of_band"
TOOL_OUTCOME = "rtagent.tool.outcome"
"""``ok``, or why the call failed: tool_error, exception, timeout, invalid_arguments,
invalid_json, unknown_tool, cancelled; ``session_closed`` if it never finished."""

# -- operation names and values ----------------------------------------------------------

INVOKE_AGENT = "invoke_agent"
INFERENCE = "realtime_inference"
EXECUTE_TOOL = "execute_tool"

# -- metrics -----------------------------------------------------------------------------

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
TOOL_TIME_TO_OUTPUT = "rtagent.tool.time_to_output"
TOOL_TIME_TO_NEXT_DELTA = "rtagent.tool.time_to_next_delta"

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
"""The bucket boundaries the conventions advise for token counts."""
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
"""The bucket boundaries the conventions advise for operation durations, in seconds."""
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Finer boundaries for rtagent's client-side tool-turn latencies, in seconds."""
