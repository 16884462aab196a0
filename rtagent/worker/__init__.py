"""Scale-out on NATS JetStream: a fleet of workers that run calls, and survive each other.

* :class:`FleetClient` (and :func:`submit`) queue calls: a SIP/WebRTC ``call_id`` (ringing,
  or already live with ``accepted=True``) or a WebSocket session. The id is the message
  id, so duplicate webhooks queue one job. Control a running call (hang up, transfer,
  say, send text, hand off) and follow its events (transcripts, tools, usage, latency).
* :class:`Worker` (``rtagent worker AGENT --nats URL --capacity N``) pulls only as many
  calls as it has free slots, accepts a ringing call, attaches by ``call_id`` and runs
  the agent until hang-up; on ``SIGTERM`` it stops pulling and drains.
* Failover: a worker that dies stops acknowledging progress, and within ``ack_wait``
  another worker receives the job, claims the call in the registry and re-attaches.
  Each tool call is journalled before it runs: the new worker re-runs it if its tool is
  ``idempotent``, posts its output if it had finished, and otherwise tells the model it
  could not finish; no tool runs twice unless it is marked safe to.

Needs ``pip install 'rtagent[nats]'``. nats-py is asyncio-only: run workers and clients on
asyncio (anyio's default backend).
"""

from __future__ import annotations

try:
    import nats as _nats  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from .._errors import ConfigurationError

    raise ConfigurationError("rtagent.worker needs: pip install 'rtagent[nats]'") from exc

from ._fleet import FleetClient, FleetError, submit
from ._jobs import Job
from ._names import FleetNames
from ._store import FleetSettings
from ._worker import Worker

__all__ = ["FleetClient", "FleetError", "FleetNames", "FleetSettings", "Job", "Worker", "submit"]
