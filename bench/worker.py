"""One client process running one scenario: ``python -m bench.worker '<json spec>'``.

Each client runs in its own process so CPU time (``time.process_time``) and RSS are its
own. The result is one JSON object on the last line of stdout. Turnaround is measured by
the server; this process reports what only the client can see: CPU, memory, lateness.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import math
import resource
import sys
import time
from typing import Any

from bench.clients import ADAPTERS, BLOCK_S


def rss_bytes() -> int:
    """Current resident set size (psutil when installed, else /proc)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover - psutil is in the bench extra
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()


def url_for(base: str, tag: str, mode: str = "tool", gap_us: int = 1000) -> str:
    return f"{base}/{tag}/{mode}/{gap_us}/v1/realtime?model=gpt-realtime"


async def _turns(adapter: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up on one connection, then ``turns`` sequential tool questions on a fresh one."""
    base, tag = spec["server"], spec["tag"]
    async with adapter.session(url_for(base, tag + "~warm")) as s:
        for i in range(spec.get("warmup", 20)):
            await adapter.ask(s, f"w{i}")
    connects: list[float] = []
    for _ in range(spec.get("connects", 0)):
        t0 = time.perf_counter()
        async with adapter.session(url_for(base, tag + "~connect")):
            connects.append(time.perf_counter() - t0)
    gc.collect()
    async with adapter.session(url_for(base, tag, gap_us=spec.get("gap_us", 1000))) as s:
        answer = await adapter.ask(s, "check")
        n = spec["turns"]
        # RSS after each tenth of the session (a long session must not grow).
        step = max(1, n // 10)
        rss: list[int] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(n):
            await adapter.ask(s, f"q{i}")
            if (i + 1) % step == 0:
                rss.append(rss_bytes())
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "turns": n, "cpu_s": cpu, "wall_s": wall, "cpu_per_turn_us": cpu / n * 1e6,
        "answer": answer, "connect_s": connects, "rss": rss_bytes(), "rss_deciles": rss,
    }


class Sessions:
    """K sessions, each entered and exited in its own task (anyio scopes must not change task).

    ``async with Sessions(factories) as sessions`` returns once all are open; leaving the
    block closes them.
    """

    def __init__(self, factories: list[Any], parallel: int = 50) -> None:
        self.factories = factories
        self.sem = asyncio.Semaphore(parallel)
        self.close = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def _hold(self, factory: Any, ready: asyncio.Future[Any]) -> None:
        try:
            async with self.sem:
                cm = factory()
                s = await cm.__aenter__()
            try:
                ready.set_result(s)
                await self.close.wait()
            finally:
                await cm.__aexit__(None, None, None)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                raise

    async def __aenter__(self) -> list[Any]:
        loop = asyncio.get_running_loop()
        readies = [loop.create_future() for _ in self.factories]
        self.tasks = [asyncio.create_task(self._hold(f, r)) for f, r in zip(self.factories, readies, strict=True)]
        return list(await asyncio.gather(*readies))

    async def __aexit__(self, *exc: Any) -> None:
        self.close.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _paced(adapter: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """K sessions in this process, each asking one tool question per second for ``duration`` s."""
    from contextlib import AsyncExitStack

    base, tag, k, duration = spec["server"], spec["tag"], spec["k"], spec["duration"]
    interval = spec.get("interval", 1.0)
    async with adapter.session(url_for(base, tag + "~warm")) as s:
        for i in range(10):
            await adapter.ask(s, f"w{i}")
    gc.collect()
    rss0 = rss_bytes()
    async with AsyncExitStack() as stack:
        t_open = time.perf_counter()
        url = url_for(base, tag)
        sessions = await stack.enter_async_context(
            Sessions([lambda: adapter.session(url) for _ in range(k)])
        )
        open_s = time.perf_counter() - t_open
        await asyncio.sleep(1.0)
        gc.collect()
        rss_idle = rss_bytes()
        peak = [rss_idle]
        lags: list[float] = []
        asked = [0]
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_bytes())
                await asyncio.sleep(0.25)

        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.5
        end = t0 + duration

        async def run(i: int, s: Any) -> None:
            due = t0 + interval * i / k
            q = 0
            while due < end and loop.time() < end:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                asked[0] += 1
                await adapter.ask(s, f"s{i}q{q}")
                lags.append(loop.time() - due)
                q += 1
                due += interval

        sampler = asyncio.create_task(sample())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        tasks = [asyncio.create_task(run(i, s)) for i, s in enumerate(sessions)]
        # A client that fell behind stops asking at the end; in-flight answers get a grace period.
        await asyncio.wait(tasks, timeout=max(0.0, end - loop.time()) + 3.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stop.set()
        await sampler
    scheduled = sum(
        max(0, math.ceil((duration - interval * i / k) / interval)) for i in range(k)
    )
    lags.sort()
    on_time = sum(1 for x in lags if x <= interval)
    return {
        "k": k, "duration_s": duration, "scheduled": scheduled, "answered": len(lags),
        "on_time": on_time, "on_time_frac": on_time / scheduled if scheduled else 0.0,
        "lag_p50_ms": _pct(lags, 50) * 1e3, "lag_p99_ms": _pct(lags, 99) * 1e3,
        "lag_max_ms": (lags[-1] if lags else 0.0) * 1e3,
        "cpu_s": cpu, "wall_s": wall, "cpu_per_question_us": cpu / max(1, len(lags)) * 1e6,
        "cpu_util": cpu / wall if wall else 0.0, "open_s": open_s,
        "rss_base": rss0, "rss_idle": rss_idle, "rss_peak": peak[0],
        "idle_per_session_kib": (rss_idle - rss0) / k / 1024,
        "peak_per_session_kib": (peak[0] - rss0) / k / 1024,
    }


async def _burst(adapter: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """K sessions doing back-to-back tool turns for ``duration`` s (server sends responses whole)."""
    from contextlib import AsyncExitStack

    base, tag, k, duration = spec["server"], spec["tag"], spec["k"], spec["duration"]
    async with AsyncExitStack() as stack:
        url = url_for(base, tag, gap_us=0)
        sessions = await stack.enter_async_context(
            Sessions([lambda: adapter.session(url) for _ in range(k)])
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        count = [0]

        async def run(i: int, s: Any) -> None:
            q = 0
            while loop.time() < end:
                await adapter.ask(s, f"b{i}q{q}")
                q += 1
                count[0] += 1

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(run(i, s) for i, s in enumerate(sessions)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "k": k, "turns": count[0], "cpu_s": cpu, "wall_s": wall,
        "turns_per_s": count[0] / wall, "turns_per_cpu_s": count[0] / cpu if cpu else 0.0,
    }


async def _audio(adapter: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """K sessions streaming PCM16 24 kHz both ways at real time; the server echoes the audio."""
    from contextlib import AsyncExitStack

    base, tag, k, duration = spec["server"], spec["tag"], spec["k"], spec["duration"]
    chunk_ms = spec.get("chunk_ms", 20)
    pcm = bytes(range(256)) * (48 * chunk_ms // 256) + bytes(48 * chunk_ms % 256)
    received = [0]

    def sink(data: bytes) -> None:
        received[0] += len(data)

    async with AsyncExitStack() as stack:
        url = url_for(base, tag, mode="audio")
        sessions = await stack.enter_async_context(
            Sessions([lambda: adapter.audio_session(url, sink) for _ in range(k)])
        )
        for s in sessions:
            await adapter.start_audio(s)
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        ticks = int(duration * 1000 / chunk_ms)
        late = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        t0 = loop.time()
        for n in range(ticks):
            # One media clock for every call, as in a media server: a chunk per call per tick.
            for s in sessions:
                await adapter.send_audio(s, pcm)
            delay = t0 + (n + 1) * chunk_ms / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late += 1
        await asyncio.sleep(0.2)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        for s in sessions:
            await adapter.stop_audio(s)
        await asyncio.sleep(0.1)
    sent_s = k * ticks * chunk_ms / 1000
    return {
        "k": k, "duration_s": duration, "chunk_ms": chunk_ms, "cpu_s": cpu, "wall_s": wall,
        "audio_s_sent": sent_s, "audio_s_received": received[0] / 48000,
        "cpu_ms_per_audio_s": cpu / sent_s * 1e3, "late_ticks": late, "ticks": ticks,
    }


async def _stall(adapter: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """One session's tool blocks for ``BLOCK_S`` while other sessions are timed.

    ``k`` sessions ask a tool question every ``interval`` s, ``audio_k`` sessions stream
    audio at real time, and a ticker measures how late a 1 ms sleep wakes (event-loop lag).
    After ``lead`` s one more session asks the question whose tool blocks. Every delay is
    reported for two windows: while the tool blocks, and a baseline of the same length
    before it (the machine's own noise).
    """
    from contextlib import AsyncExitStack

    base, tag = spec["server"], spec["tag"]
    k, audio_k = spec.get("k", 20), spec.get("audio_k", 10)
    interval, lead = spec.get("interval", 0.1), spec.get("lead", 2.5)
    chunk_ms = 20
    pcm = bytes(48 * chunk_ms)
    arrivals: list[list[float]] = [[] for _ in range(audio_k)]
    questions: list[tuple[float, float]] = []  # (asked at, seconds to answer)
    lags: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()

    def sink_for(i: int) -> Any:
        return lambda data: arrivals[i].append(loop.time())

    async with AsyncExitStack() as stack:
        url, audio_url = url_for(base, tag), url_for(base, tag + "~audio", mode="audio")
        staller = await stack.enter_async_context(adapter.session(url_for(base, tag + "~block")))
        sessions = await stack.enter_async_context(Sessions([lambda: adapter.session(url) for _ in range(k)]))
        speakers = await stack.enter_async_context(
            Sessions([(lambda i=i: adapter.audio_session(audio_url, sink_for(i))) for i in range(audio_k)])
        )
        for s in speakers:
            await adapter.start_audio(s)
        t0 = loop.time() + 0.2
        block_at, end = t0 + lead, t0 + lead + BLOCK_S + 0.5
        blocked: list[float] = []

        async def ask_loop(i: int, s: Any) -> None:
            due = t0 + interval * i / max(1, k)
            while due < end:
                await asyncio.sleep(max(0.0, due - loop.time()))
                asked = loop.time()
                await adapter.ask(s, f"s{i}")
                questions.append((asked, loop.time() - asked))
                due += interval

        async def stream() -> None:
            n = 0
            while t0 + n * chunk_ms / 1000 < end:
                for s in speakers:
                    await adapter.send_audio(s, pcm)
                n += 1
                await asyncio.sleep(max(0.0, t0 + n * chunk_ms / 1000 - loop.time()))

        async def tick() -> None:
            while loop.time() < end:
                before = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append((loop.time(), time.perf_counter() - before - 0.001))

        async def block() -> None:
            await asyncio.sleep(max(0.0, block_at - loop.time()))
            start = loop.time()
            await adapter.ask(staller, "block")
            blocked.extend((start, loop.time()))

        cpu0 = time.process_time()
        await asyncio.gather(block(), stream(), tick(), *(ask_loop(i, s) for i, s in enumerate(sessions)))
        cpu = time.process_time() - cpu0
        for s in speakers:
            await adapter.stop_audio(s)
    start, stop = blocked
    # Each delay spans an interval; it counts in a window it overlaps. The baseline ends a
    # little before the blocking question is asked.
    windows = {"blocked": (start, start + BLOCK_S + 0.05), "baseline": (start - BLOCK_S - 0.25, start - 0.2)}
    spans_lag = [(t - x - 0.001, t, x) for t, x in lags]
    spans_q = [(t, t + d, d) for t, d in questions]
    spans_gap = [(a, b, b - a) for times in arrivals for a, b in itertools.pairwise(times)]
    out: dict[str, Any] = {"k": k, "audio_k": audio_k, "block_s": BLOCK_S, "block_answer_s": stop - start,
                           "cpu_s": cpu}
    for name, (lo, hi) in windows.items():

        def within(spans: list[tuple[float, float, float]], lo: float = lo, hi: float = hi) -> list[float]:
            return [x for a, b, x in spans if a < hi and b > lo]

        lag, asked, gaps = within(spans_lag), within(spans_q), within(spans_gap)
        out[name] = {
            "loop_lag_max_ms": max(lag, default=0.0) * 1e3,
            "loop_lag_p99_ms": _pct(lag, 99) * 1e3,
            "question_max_ms": max(asked, default=0.0) * 1e3,
            "question_p50_ms": _pct(asked, 50) * 1e3,
            "questions": len(asked),
            "audio_gap_max_ms": max(gaps, default=0.0) * 1e3,
            "audio_chunks": len(gaps),
        }
    # The worst delay another session saw: the longest loop lag, the slowest question beyond
    # the baseline's median, or the longest audio gap beyond one chunk. And what the blocking
    # tool added: how much longer each worst case was than in the baseline (the machine's noise).
    b, base = out["blocked"], out["baseline"]
    out["worst_delay_ms"] = max(
        b["loop_lag_max_ms"], b["question_max_ms"] - base["question_p50_ms"],
        b["audio_gap_max_ms"] - chunk_ms,
    )
    out["added_delay_ms"] = max(
        0.0, *(b[key] - base[key] for key in ("loop_lag_max_ms", "question_max_ms", "audio_gap_max_ms"))
    )
    return out


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


SCENARIOS = {"turns": _turns, "paced": _paced, "burst": _burst, "audio": _audio, "stall": _stall}


def main() -> None:
    spec = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.ERROR)
    adapter = ADAPTERS[spec["client"]](tool=spec.get("tool", "async"))
    result = asyncio.run(SCENARIOS[spec["scenario"]](adapter, spec))
    result["client"] = spec["client"]
    result["scenario"] = spec["scenario"]
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
