"""Run every benchmark and write ``bench/results/`` (results.md, results.json, results.png).

Usage::

    python -m bench              # the full run (about 12 minutes on 2 cores)
    python -m bench --quick      # tiny sizes, a smoke run (seconds)
    python -m bench --clients floor,rtagent --only turnaround,paced
    python -m bench --tools sync            # only plain ``def`` tools

Rows are named ``client/tool``: ``rtagent/sync`` runs a plain ``def`` echo tool,
``rtagent/async`` an ``async def`` one (see bench/clients.py for how each client runs them).

Peers that are not installed are skipped (install them with ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.clients import ADAPTERS, IMPORTS, PACKAGES, TOOL_KINDS
from bench.harness import ServerPool, import_time, median, percentile, run_worker
from bench.report import write_results

SECTIONS = ("startup", "turnaround", "drift", "growth", "paced", "burst", "audio", "stall")


@dataclass
class Config:
    """Sizes of every benchmark; ``quick()`` shrinks them for the smoke test."""

    rounds: int = 3
    turns: int = 300
    warmup: int = 30
    connects: int = 20
    tools: list[str] = field(default_factory=lambda: list(TOOL_KINDS))
    drift_turns: int = 1000
    growth_turns: int = 100_000
    growth_rows: list[str] = field(default_factory=lambda: ["rtagent/sync"])
    paced_k: list[int] = field(default_factory=lambda: [100, 500, 1000])
    paced_duration: float = 20.0
    paced_rows: list[str] = field(
        default_factory=lambda: ["floor/sync", "rtagent/sync", "rtagent/async", "openai-agents/sync"]
    )
    burst_k: int = 50
    burst_duration: float = 5.0
    audio_k: int = 100
    audio_duration: float = 10.0
    audio_clients: list[str] = field(default_factory=lambda: ["floor", "rtagent", "openai-raw", "openai-agents"])
    stall_k: int = 20
    stall_audio_k: int = 10
    stall_lead: float = 2.5
    stall_rows: list[str] = field(default_factory=lambda: ["floor/sync", "rtagent/sync", "openai-agents/sync"])
    import_repeat: int = 5
    load_servers: int = 2

    @classmethod
    def quick(cls) -> Config:
        return cls(
            rounds=1, turns=20, warmup=3, connects=2, drift_turns=30, growth_turns=50, paced_k=[2],
            paced_duration=1.0, burst_k=2, burst_duration=0.5, audio_k=2, audio_duration=0.5,
            stall_k=2, stall_audio_k=1, stall_lead=0.5, import_repeat=1, load_servers=1,
        )


def installed(client: str) -> bool:
    return importlib.util.find_spec(PACKAGES[client]) is not None


def split(row: str) -> tuple[str, str]:
    """``"rtagent/sync"`` → ``("rtagent", "sync")``."""
    client, _, kind = row.partition("/")
    return client, kind or "async"


def _rows(clients: list[str], kinds: list[str]) -> list[str]:
    return [f"{c}/{k}" for c in clients for k in kinds]


def _selected(rows: list[str], clients: list[str], kinds: list[str]) -> list[str]:
    return [r for r in rows if split(r)[0] in clients and split(r)[1] in kinds]


def _log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def _us(samples: list[list[int]], col: int) -> list[float]:
    return [row[col] / 1e3 for row in samples]


def run_startup(cfg: Config, clients: list[str], pool: ServerPool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in clients:
        out[c] = {"import_ms": import_time(IMPORTS[c], cfg.import_repeat) * 1e3}
        _log(f"startup {c}: import {out[c]['import_ms']:.0f} ms")
    return out


def run_turnaround(cfg: Config, clients: list[str], pool: ServerPool, results: dict[str, Any]) -> None:
    """Single session, interleaved round by round (every client and tool kind) against one server process.

    rtagent also runs its def tool declared ``@tool(inline=True)`` (compared with the floor's def tool).
    """
    rows = _rows(clients, cfg.tools)
    if "rtagent" in clients and "sync" in cfg.tools:
        rows.insert(rows.index("rtagent/sync") + 1, "rtagent/inline")
    per: dict[str, dict[str, Any]] = {row: {"rounds": [], "samples": [], "oc": [], "cpu": []} for row in rows}
    for r in range(cfg.rounds):
        for row in rows:
            c, kind = split(row)
            tag = f"turn-{c}-{kind}-r{r}"
            first = r == 0 and kind == cfg.tools[0]
            res = run_worker({"client": c, "tool": kind, "scenario": "turns", "server": pool.url, "tag": tag,
                              "turns": cfg.turns, "warmup": cfg.warmup,
                              "connects": cfg.connects if first else 0})
            # Turn 0 is the "check" question asked before the measured loop.
            samples = [s for s in pool.dump(tag).get(tag, []) if s[1] >= 1]
            ta = _us(samples, 2)
            per[row]["rounds"].append({"p50_us": median(ta), "p99_us": percentile(ta, 99), "n": len(ta),
                                       "cpu_per_turn_us": res["cpu_per_turn_us"]})
            per[row]["samples"].extend(ta)
            per[row]["oc"].extend(_us(samples, 3))
            per[row]["cpu"].append(res["cpu_per_turn_us"])
            if res.get("connect_s"):
                results.setdefault("startup", {}).setdefault(c, {})["connect_ms"] = median(res["connect_s"]) * 1e3
            _log(f"turnaround {row} round {r}: p50 {median(ta):.0f} us, p99 {percentile(ta, 99):.0f} us, "
                 f"cpu {res['cpu_per_turn_us']:.0f} us/turn, answer {res['answer']!r}")
    out: dict[str, Any] = {}
    for row in rows:
        s = per[row]["samples"]
        out[row] = {
            "rounds": per[row]["rounds"], "n": len(s),
            "p50_us": median(s), "p99_us": percentile(s, 99),
            "out_to_create_p50_us": median(per[row]["oc"]),
            "cpu_per_turn_us": median(per[row]["cpu"]),
        }
    for row in rows:
        # Each row against the floor running the same kind of tool (inline).
        floor = out.get(f"floor/{split(row)[1].replace('inline', 'sync')}")
        if floor:
            out[row]["ratio_p50"] = out[row]["p50_us"] / floor["p50_us"]
            out[row]["ratio_p99"] = out[row]["p99_us"] / floor["p99_us"]
            out[row]["ratio_cpu"] = out[row]["cpu_per_turn_us"] / floor["cpu_per_turn_us"]
        out[row]["p99_over_p50"] = out[row]["p99_us"] / out[row]["p50_us"] if out[row]["p50_us"] else 0.0
    results["turnaround"] = out


def _drift_of(rows: list[list[int]]) -> dict[str, Any]:
    ta = _us(sorted((row for row in rows if row[1] >= 1), key=lambda row: row[1]), 2)
    n = len(ta)
    edge = max(1, n // 10)
    buckets = [median(ta[i * n // 10:(i + 1) * n // 10]) for i in range(10)] if n >= 10 else []
    first, last = median(ta[:edge]), median(ta[-edge:])
    return {"turns": n, "first_p50_us": first, "last_p50_us": last,
            "last_over_first": last / first if first else 0.0, "deciles_p50_us": buckets}


def run_drift(cfg: Config, clients: list[str], pool: ServerPool, results: dict[str, Any]) -> None:
    """A 1,000-turn session per client, with the plain ``def`` tool (the one users write)."""
    out: dict[str, Any] = {}
    kind = "sync" if "sync" in cfg.tools else cfg.tools[0]
    for c in clients:
        row, tag = f"{c}/{kind}", f"drift-{c}"
        res = run_worker({"client": c, "tool": kind, "scenario": "turns", "server": pool.url, "tag": tag,
                          "turns": cfg.drift_turns, "warmup": cfg.warmup})
        out[row] = {**_drift_of(pool.dump(tag).get(tag, [])), "cpu_per_turn_us": res["cpu_per_turn_us"]}
        _log(f"drift {row}: first {out[row]['first_p50_us']:.0f} us → last {out[row]['last_p50_us']:.0f} us "
             f"over {out[row]['turns']} turns")
    results["drift"] = out


def run_growth(cfg: Config, clients: list[str], pool: ServerPool, results: dict[str, Any]) -> None:
    """One very long session (100,000 tool calls, responses sent whole): memory and latency stay flat."""
    out: dict[str, Any] = {}
    for row in _selected(cfg.growth_rows, clients, cfg.tools):
        c, kind = split(row)
        tag = f"growth-{c}-{kind}"
        res = run_worker({"client": c, "tool": kind, "scenario": "turns", "server": pool.url, "tag": tag,
                          "turns": cfg.growth_turns, "warmup": cfg.warmup, "gap_us": 0},
                         timeout=cfg.growth_turns * 0.01 + 120)
        rss = res["rss_deciles"]
        out[row] = {**_drift_of(pool.dump(tag).get(tag, [])), "cpu_per_turn_us": res["cpu_per_turn_us"],
                    "rss_deciles_mib": [x / 2**20 for x in rss],
                    "rss_growth_kib": (rss[-1] - rss[0]) / 1024 if rss else 0.0}
        _log(f"growth {row}: {out[row]['turns']} turns, RSS {rss[0] / 2**20 if rss else 0:.1f} → "
             f"{rss[-1] / 2**20 if rss else 0:.1f} MiB, median {out[row]['first_p50_us']:.0f} → "
             f"{out[row]['last_p50_us']:.0f} us")
    results["growth"] = out


def run_paced(cfg: Config, rows: list[str], pool: ServerPool, results: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    for k in cfg.paced_k:
        for row in rows:
            c, kind = split(row)
            tag = f"paced-{c}-{kind}-{k}"
            res = run_worker({"client": c, "tool": kind, "scenario": "paced", "server": pool.url, "tag": tag,
                              "k": k, "duration": cfg.paced_duration},
                             timeout=cfg.paced_duration * 4 + 240)
            ta = _us(pool.dump(tag).get(tag, []), 2)
            res.update({"turn_p50_us": median(ta), "turn_p99_us": percentile(ta, 99), "server_turns": len(ta)})
            out.setdefault(row, {})[str(k)] = res
            _log(f"paced {row} K={k}: on time {res['on_time']}/{res['scheduled']}, turn p50 {median(ta):.0f} us "
                 f"p99 {percentile(ta, 99):.0f} us, cpu {res['cpu_per_question_us']:.0f} us/q, "
                 f"idle {res['idle_per_session_kib']:.1f} KiB/session")
    results["paced"] = out


def run_burst(cfg: Config, clients: list[str], pool: ServerPool, results: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    for row in _rows(clients, cfg.tools):
        c, kind = split(row)
        tag = f"burst-{c}-{kind}"
        res = run_worker({"client": c, "tool": kind, "scenario": "burst", "server": pool.url, "tag": tag,
                          "k": cfg.burst_k, "duration": cfg.burst_duration})
        pool.dump(tag)
        out[row] = res
        _log(f"burst {row} K={cfg.burst_k}: {res['turns_per_s']:.0f} turns/s, "
             f"{res['turns_per_cpu_s']:.0f} turns per client CPU-second")
    results["burst"] = out


def run_audio(cfg: Config, clients: list[str], pool: ServerPool, results: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    for c in clients:
        res = run_worker({"client": c, "scenario": "audio", "server": pool.url, "tag": f"audio-{c}",
                          "k": cfg.audio_k, "duration": cfg.audio_duration})
        out[c] = res
        _log(f"audio {c} K={cfg.audio_k}: {res['cpu_ms_per_audio_s']:.2f} ms CPU per audio second, "
             f"received {res['audio_s_received']:.0f}/{res['audio_s_sent']:.0f} s")
    if "floor" in out:
        for c in out:
            out[c]["ratio_cpu"] = out[c]["cpu_ms_per_audio_s"] / out["floor"]["cpu_ms_per_audio_s"]
    results["audio"] = out


def run_stall(cfg: Config, rows: list[str], pool: ServerPool, results: dict[str, Any]) -> None:
    """One session's tool blocks 2 s; how long do the other sessions' events and audio wait?"""
    out: dict[str, Any] = {}
    for row in rows:
        c, kind = split(row)
        tag = f"stall-{c}-{kind}"
        res = run_worker({"client": c, "tool": kind, "scenario": "stall", "server": pool.url, "tag": tag,
                          "k": cfg.stall_k, "audio_k": cfg.stall_audio_k, "lead": cfg.stall_lead})
        pool.dump("*")
        out[row] = res
        b = res["blocked"]
        _log(f"stall {row}: worst delay {res['worst_delay_ms']:.1f} ms (loop lag {b['loop_lag_max_ms']:.1f} ms, "
             f"slowest question {b['question_max_ms']:.1f} ms, audio gap {b['audio_gap_max_ms']:.1f} ms)")
    results["stall"] = out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("rtagent", "websockets", "anyio", "pydantic", "openai", "openai-agents", "pydantic-ai-slim"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


def run(cfg: Config, clients: list[str], out_dir: Path, only: tuple[str, ...] = SECTIONS,
        quick: bool = False) -> dict[str, Any]:
    """Run the selected sections and write the results; returns the results dict."""
    skipped = [c for c in clients if not installed(c)]
    clients = [c for c in clients if c not in skipped]
    results: dict[str, Any] = {
        "meta": {
            "quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "versions": _versions(), "config": asdict(cfg),
            "clients": clients, "skipped": skipped,
            "server": "bench/server.py: asyncio Protocol + websockets sans-I/O ServerProtocol",
        }
    }
    t0 = time.perf_counter()
    with ServerPool(1) as pool:
        if "startup" in only:
            results["startup"] = run_startup(cfg, clients, pool)
        if "turnaround" in only:
            run_turnaround(cfg, clients, pool, results)
        if "drift" in only:
            run_drift(cfg, clients, pool, results)
        if "growth" in only:
            run_growth(cfg, clients, pool, results)
    with ServerPool(cfg.load_servers) as pool:
        results["meta"]["load_server_processes"] = cfg.load_servers
        if "paced" in only:
            run_paced(cfg, _selected(cfg.paced_rows, clients, cfg.tools), pool, results)
        if "burst" in only:
            run_burst(cfg, clients, pool, results)
        if "audio" in only:
            run_audio(cfg, [c for c in cfg.audio_clients if c in clients], pool, results)
        if "stall" in only:
            run_stall(cfg, _selected(cfg.stall_rows, clients, ["sync"]), pool, results)
    results["meta"]["elapsed_s"] = time.perf_counter() - t0
    write_results(results, out_dir)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--clients", default=",".join(ADAPTERS), help="comma-separated clients")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--tools", default=",".join(TOOL_KINDS), help="tool kinds: sync (def), async (async def)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    cfg = Config.quick() if args.quick else Config()
    cfg.tools = [k for k in args.tools.split(",") if k in TOOL_KINDS] or list(TOOL_KINDS)
    clients = [c for c in args.clients.split(",") if c]
    unknown = [c for c in clients if c not in ADAPTERS]
    if unknown:
        parser.error(f"unknown clients: {unknown}; choose from {list(ADAPTERS)}")
    results = run(cfg, clients, Path(args.out), tuple(args.only.split(",")), quick=args.quick)
    _log(f"done in {results['meta']['elapsed_s']:.0f} s; wrote {args.out}/results.md")
    print(json.dumps(results.get("targets", []), indent=1))


if __name__ == "__main__":
    main()
