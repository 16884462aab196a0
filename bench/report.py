"""Turn a results dict into results.json, results.md (tables + targets) and results.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KIND_LABEL = {"sync": "def", "async": "async def", "inline": "inline def"}


def label(row: str) -> str:
    """``"rtagent/sync"`` → ``"rtagent (def tool)"``."""
    client, _, kind = row.partition("/")
    return f"{client} ({KIND_LABEL.get(kind, kind)} tool)" if kind else client


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets (issue 16), each with the measured value and whether it is met."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: str, met: bool | None) -> None:
        out.append({"target": name, "value": value, "limit": limit, "met": met})

    ta = results.get("turnaround", {})
    for kind, limit in (("sync", 1.5), ("async", 1.2)):
        rt, fl = ta.get(f"rtagent/{kind}"), ta.get(f"floor/{kind}")
        if rt and fl:
            v = rt["p50_us"] / fl["p50_us"]
            add(f"single session, {KIND_LABEL[kind]} tool: rtagent median turnaround / floor's", v,
                f"<= {limit}", v <= limit)
        if rt:
            add(f"single session, {KIND_LABEL[kind]} tool: rtagent p99 / its median", rt["p99_over_p50"], "<= 2",
                rt["p99_over_p50"] <= 2)
    dr = results.get("drift", {}).get("rtagent/sync")
    if dr:
        add("1,000-turn session: rtagent last-decile / first-decile median", dr["last_over_first"],
            "flat (<= 1.2)", dr["last_over_first"] <= 1.2)
    gr = results.get("growth", {}).get("rtagent/sync")
    if gr and gr["rss_deciles_mib"]:
        add(f"{gr['turns']:,}-call session: rtagent RSS growth after the first tenth (KiB)",
            gr["rss_growth_kib"], "<= 1024 (flat)", gr["rss_growth_kib"] <= 1024)
    paced = results.get("paced", {})
    pfl = paced.get("floor/sync", {})
    for kind in ("sync", "async"):
        prt = paced.get(f"rtagent/{kind}", {})
        for k in sorted(prt, key=int):
            if int(k) < 500 and len(prt) > 1:
                continue  # the targets are for 500 and 1,000 sessions
            r, f = prt[k], pfl.get(k)
            who = f"paced K={k}, {KIND_LABEL[kind]} tool: rtagent"
            add(f"{who} questions on time", r["on_time_frac"], "= 1.0 (all)", r["on_time"] == r["scheduled"])
            if f:
                v = r["turn_p99_us"] / f["turn_p99_us"]
                add(f"{who} p99 turnaround / floor's p99", v, "<= 3", v <= 3)
                v = r["cpu_per_question_us"] / f["cpu_per_question_us"]
                add(f"{who} CPU per question / floor's", v, "<= 1.2", v <= 1.2)
            add(f"{who} idle memory per session (KiB)", r["idle_per_session_kib"], "<= 48",
                r["idle_per_session_kib"] <= 48)
    au = results.get("audio", {})
    if "rtagent" in au and "floor" in au:
        v = au["rtagent"]["cpu_ms_per_audio_s"] / au["floor"]["cpu_ms_per_audio_s"]
        add("audio: rtagent CPU per streamed second / floor's", v, "<= 1.3", v <= 1.3)
    st = results.get("stall", {}).get("rtagent/sync")
    if st:
        add("stall: delay a def tool blocking 2 s adds to other sessions (ms, beyond the baseline's worst)",
            st["added_delay_ms"], "<= 5", st["added_delay_ms"] <= 5)
    return out


def _f(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# rtagent benchmark results",
        "",
        f"{'QUICK (smoke) run: sizes are tiny, numbers mean nothing. ' if meta.get('quick') else ''}"
        f"Run {meta['started']}, Python {meta['python']}, {meta['cpus']} CPUs, {meta['platform']}; "
        f"took {meta.get('elapsed_s', 0):.0f} s. Versions: "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
        f"Server: {meta['server']}. Single-session runs use one server process; paced, burst and audio "
        f"runs use {meta.get('load_server_processes', 1)} processes sharing the port (SO_REUSEPORT). "
        "Turnaround is timed by the server: from writing `response.done` of the function-call response "
        "to reading the `response.create` that follows the `function_call_output`. Every client runs in "
        "its own process; CPU is that process's `time.process_time()`.",
        "",
    ]
    if meta.get("skipped"):
        lines += [f"Skipped (not installed): {', '.join(meta['skipped'])}.", ""]
    tg = results.get("targets") or []
    if tg:
        lines += ["## Targets", "", "| target | measured | limit | met |", "|---|---:|---|---|"]
        for t in tg:
            lines.append(f"| {t['target']} | {_f(t['value'], 2)} | {t['limit']} | {'yes' if t['met'] else 'NO'} |")
        lines.append("")
    ta = results.get("turnaround")
    if ta:
        cfg = meta["config"]
        lines += [
            f"## Tool-call turnaround, single session ({cfg['rounds']} interleaved rounds x {cfg['turns']} turns)",
            "",
            "Each row's ratios are to the floor running the same kind of tool (inline, in its reader).",
            "",
            "| client | median µs | p99 µs | x floor (median) | x floor (p99) | p99/median | output→create µs | client CPU/turn µs | x floor CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c, r in ta.items():
            lines.append(
                f"| {label(c)} | {_f(r['p50_us'])} | {_f(r['p99_us'])} | {_f(r.get('ratio_p50'), 2)} | "
                f"{_f(r.get('ratio_p99'), 2)} | {_f(r['p99_over_p50'], 2)} | {_f(r['out_to_create_p50_us'])} | "
                f"{_f(r['cpu_per_turn_us'])} | {_f(r.get('ratio_cpu'), 2)} |"
            )
        lines += ["", "Per round (median µs): " + "; ".join(
            f"{label(c)} " + "/".join(_f(x["p50_us"]) for x in r["rounds"]) for c, r in ta.items()), ""]
    dr = results.get("drift")
    if dr:
        lines += [
            f"## Drift over a {meta['config']['drift_turns']}-turn session",
            "",
            "| client | first 10% median µs | last 10% median µs | last/first | decile medians µs |",
            "|---|---:|---:|---:|---|",
        ]
        for c, r in dr.items():
            lines.append(f"| {label(c)} | {_f(r['first_p50_us'])} | {_f(r['last_p50_us'])} | "
                         f"{_f(r['last_over_first'], 2)} | {' '.join(_f(x) for x in r['deciles_p50_us'])} |")
        lines.append("")
    gr = results.get("growth")
    if gr:
        lines += [
            f"## A long session: {meta['config']['growth_turns']:,} tool calls on one connection "
            "(responses sent whole)",
            "",
            "| client | turns | first 10% median µs | last 10% median µs | RSS per tenth MiB | RSS growth KiB |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for c, r in gr.items():
            lines.append(f"| {label(c)} | {r['turns']:,} | {_f(r['first_p50_us'])} | {_f(r['last_p50_us'])} | "
                         f"{' '.join(_f(x, 1) for x in r['rss_deciles_mib'])} | {_f(r['rss_growth_kib'])} |")
        lines.append("")
    pa = results.get("paced")
    if pa:
        lines += [
            f"## Paced load: K sessions in one client process, one tool question per second each, "
            f"{meta['config']['paced_duration']:.0f} s",
            "",
            "On time = answered within 1 s of being due. Unanswered questions count as late. "
            "Ratios are to the floor (its tool inline).",
            "",
            "| client | K | on time | answered/scheduled | lag p99 ms | turnaround p50 µs | p99 µs | p99 x floor | CPU/question µs | CPU x floor | client CPU use | idle KiB/session | peak KiB/session |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for k in sorted({int(k) for r in pa.values() for k in r}):
            for c, rows in pa.items():
                r = rows.get(str(k))
                if not r:
                    continue
                f = pa.get("floor/sync", {}).get(str(k))
                p99x = r["turn_p99_us"] / f["turn_p99_us"] if f and f["turn_p99_us"] else None
                cpux = r["cpu_per_question_us"] / f["cpu_per_question_us"] if f else None
                lines.append(
                    f"| {label(c)} | {k} | {r['on_time_frac'] * 100:.1f}% | {r['answered']}/{r['scheduled']} | "
                    f"{_f(r['lag_p99_ms'], 1)} | {_f(r['turn_p50_us'])} | {_f(r['turn_p99_us'])} | {_f(p99x, 2)} | "
                    f"{_f(r['cpu_per_question_us'])} | {_f(cpux, 2)} | {r['cpu_util'] * 100:.0f}% | "
                    f"{_f(r['idle_per_session_kib'], 1)} | {_f(r['peak_per_session_kib'], 1)} |"
                )
        lines.append("")
    bu = results.get("burst")
    if bu:
        lines += [
            f"## Burst: {meta['config']['burst_k']} sessions doing back-to-back tool turns "
            f"({meta['config']['burst_duration']:.0f} s, responses sent whole)",
            "",
            "| client | turns/s | turns per client CPU-second |",
            "|---|---:|---:|",
        ]
        for c, r in bu.items():
            lines.append(f"| {label(c)} | {_f(r['turns_per_s'])} | {_f(r['turns_per_cpu_s'])} |")
        lines.append("")
    au = results.get("audio")
    if au:
        lines += [
            f"## Audio: {meta['config']['audio_k']} sessions streaming PCM16 24 kHz both ways at real time "
            f"({meta['config']['audio_duration']:.0f} s, 20 ms chunks; the server echoes each chunk as "
            "`response.output_audio.delta`)",
            "",
            "| client | CPU ms per streamed audio second | x floor | audio s received/sent | late ticks |",
            "|---|---:|---:|---:|---:|",
        ]
        for c, r in au.items():
            lines.append(f"| {c} | {_f(r['cpu_ms_per_audio_s'], 2)} | {_f(r.get('ratio_cpu'), 2)} | "
                         f"{_f(r['audio_s_received'])}/{_f(r['audio_s_sent'])} | {r['late_ticks']}/{r['ticks']} |")
        lines.append("")
    sl = results.get("stall")
    if sl:
        cfg = meta["config"]
        lines += [
            f"## Stall: one session's tool blocks 2 s while {cfg['stall_k']} sessions ask a tool question "
            f"every 100 ms and {cfg['stall_audio_k']} stream audio",
            "",
            "Delays seen by the other sessions while the tool blocks (baseline: the 2 s before it). Loop lag: "
            "how late a 1 ms sleep wakes. Worst delay: the largest of the loop lag, the slowest question "
            "beyond the baseline median, and the longest audio gap beyond one 20 ms chunk. Added: how much "
            "longer the worst of each was than in the baseline.",
            "",
            "| client | worst delay ms | added ms | loop lag max ms (baseline) | slowest question ms (baseline) | "
            "longest audio gap ms (baseline) | blocking call answered after s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c, r in sl.items():
            b, base = r["blocked"], r["baseline"]
            lines.append(
                f"| {label(c)} | {_f(r['worst_delay_ms'], 1)} | {_f(r.get('added_delay_ms'), 1)} | "
                f"{_f(b['loop_lag_max_ms'], 1)} "
                f"({_f(base['loop_lag_max_ms'], 1)}) | {_f(b['question_max_ms'], 1)} "
                f"({_f(base['question_max_ms'], 1)}) | {_f(b['audio_gap_max_ms'], 1)} "
                f"({_f(base['audio_gap_max_ms'], 1)}) | {_f(r['block_answer_s'], 2)} |"
            )
        lines.append("")
    st = results.get("startup")
    if st:
        lines += ["## Start-up", "", "| client | import ms (fresh interpreter) | connect → session.updated ms |",
                  "|---|---:|---:|"]
        for c, r in st.items():
            lines.append(f"| {c} | {_f(r.get('import_ms'), 0)} | {_f(r.get('connect_ms'), 1)} |")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    """Turnaround (p50, p99) and CPU per question against K, one line per client."""
    pa = results.get("paced")
    if not pa:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for c, rows in pa.items():
        ks = sorted(int(k) for k in rows)
        line = ax1.plot(ks, [rows[str(k)]["turn_p50_us"] / 1e3 for k in ks], marker="o",
                        label=f"{label(c)} p50")[0]
        ax1.plot(ks, [rows[str(k)]["turn_p99_us"] / 1e3 for k in ks], marker="x", linestyle="--",
                 color=line.get_color(), label=f"{label(c)} p99")
        ax2.plot(ks, [rows[str(k)]["cpu_per_question_us"] / 1e3 for k in ks], marker="o", label=label(c))
    ax1.set(xlabel="sessions K (one question/s each)", ylabel="tool-call turnaround (ms, server-timed)",
            title="Turnaround under paced load", yscale="log")
    ax2.set(xlabel="sessions K (one question/s each)", ylabel="client CPU per question (ms)",
            title="Client CPU per question")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_results(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    results["targets"] = targets(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "results.md").write_text(markdown(results) + "\n")
    plot(results, out_dir / "results.png")
