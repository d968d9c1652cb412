"""The report of `python -m fastloop bench`: medians per case and loop, the fastloop/uvloop
ratios against the issue's targets, the Markdown table and the PNG plots (benchmarks/run.py
measures; this only reads its runs)."""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

LOOPS = ("fastloop", "uvloop", "asyncio")

# (section, kind, size, conns); targets: fastloop/uvloop ratio → (metric, op, bound)
CASES = [
    ("echo-proto", "echo-proto", 64, 1), ("echo-proto", "echo-proto", 64, 32),
    ("echo-proto", "echo-proto", 16384, 1), ("echo-proto", "echo-proto", 16384, 32),
    ("echo-stream", "echo-stream", 64, 1), ("echo-stream", "echo-stream", 64, 32),
    ("echo-stream", "echo-stream", 16384, 1), ("echo-stream", "echo-stream", 16384, 32),
    ("http", "http", 0, 32),
    ("bulk", "bulk", 0, 1),
    ("conn", "conn", 64, 8),
]
TARGETS = {
    ("echo-proto", 64, 1): [("req_per_s", ">=", 5.0), ("p99_us", "<=", 0.25)],
    ("echo-proto", 64, 32): [("req_per_s", ">=", 2.0)],
    ("echo-stream", 64, 1): [("req_per_s", ">=", 5.0), ("p99_us", "<=", 0.25)],
    ("echo-stream", 64, 32): [("req_per_s", ">=", 2.0)],
    ("http", 0, 32): [("req_per_s", ">=", 1.3), ("p99_us", "<=", 1.0)],
    ("bulk", 0, 1): [("gbit_per_s", ">=", 1.0)],
    ("conn", 64, 8): [("req_per_s", ">=", 2.0)],
}
SECTION_TITLES = {
    "echo-proto": "Echo request/response, asyncio.Protocol",
    "echo-stream": "Echo request/response, streams (start_server / open_connection)",
    "http": "aiohttp hello world, wrk -t1 -c32 from the kernel",
    "bulk": "Bulk transfer, one connection",
    "conn": "Connections per second (connect, one 64 B exchange, close; 8 in parallel)",
}
def case_id(kind, size, conns):
    if kind == "http":
        return f"http c{conns}"
    if kind == "bulk":
        return "bulk"
    if kind == "conn":
        return f"conn x{conns}"
    return f"{kind} {size if size < 1024 else str(size // 1024) + 'K'}B c{conns}"


METRICS = ("req_per_s", "p50_us", "p99_us", "p999_us", "server_cpu_us_per_req", "gbit_per_s",
           "server_runq_pct", "client_runq_pct")


def summarize(runs):
    out = {}
    for r in runs:
        x = r["result"]
        for side in ("server", "client"):       # % of the window spent waiting for a CPU
            w = x.get(f"{side}_runq_wait_s")
            x[f"{side}_runq_pct"] = None if w is None else 100 * w / x["seconds"]
        out.setdefault(r["case"], {}).setdefault(r["loop"], []).append(x)
    summary = {}
    for cid, by_loop in out.items():
        s = {}
        for loop, rs in by_loop.items():
            s[loop] = {"runs": len(rs)}
            for m in METRICS:
                vals = [x[m] for x in rs if x.get(m) is not None]
                s[loop][m] = statistics.median(vals) if vals else None
        case = next(r for r in runs if r["case"] == cid)
        key = (case["kind"], case["size"], case["conns"])
        f, u = s.get("fastloop"), s.get("uvloop")
        checks = []
        if f and u:
            for metric, op, bound in TARGETS.get(key, []):
                if f.get(metric) and u.get(metric):
                    ratio = f[metric] / u[metric]
                    met = ratio >= bound if op == ">=" else ratio <= bound
                    checks.append({"metric": metric, "ratio": ratio, "target": f"{op} {bound}x",
                                   "met": met})
            s["ratio"] = {m: f[m] / u[m] for m in METRICS[:6] if f.get(m) and u.get(m)}
        s["targets"] = checks
        s["section"], s["kind"], s["size"], s["conns"] = (case["section"], case["kind"],
                                                          case["size"], case["conns"])
        summary[cid] = s
    return summary


def _fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "rate":
        return f"{v / 1e3:,.1f}k" if v >= 1000 else f"{v:,.0f}"
    if unit == "us":
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    return f"{v:,.2f}"


def markdown(summary, meta):
    m = meta["machine"]
    lines = [f"Run {meta['date']} UTC: `{meta['command']}`  ",
             f"{m['cpu']}, {m['vcpus']} vCPU, {m['os']}, kernel {m['kernel']}, DPDK {m['dpdk']}, "
             f"Python {m['python']}, uvloop {meta['versions'].get('uvloop')}, aiohttp "
             f"{meta['versions'].get('aiohttp')}; server on CPU {meta['server_cpu']}, client on "
             f"CPU {meta['client_cpu']}; median of {meta['repeat']} runs per pair, "
             f"{meta['seconds']} s timed after {meta['warmup']} s warm-up "
             f"(wrk: {meta['wrk_seconds']} s; bulk: {meta['bulk_bytes'] / (1 << 20):.0f} MiB); "
             f"load average before the run {meta['loadavg_before']:.2f}.", "",
             "fastloop busy-polls (`idle=\"busy-poll\"`): it spins a core where uvloop and "
             "asyncio sleep in epoll, so its server CPU per request is about its wall time per "
             "request; compare CPU per request beside the rates. fastloop's pairs run over "
             f"net_memif between two processes (MTU {meta.get('memif_mtu') or 1500}; http: "
             "net_tap from the kernel's wrk); uvloop's and asyncio's over kernel loopback "
             "(MTU 65536).", "",
             "*Waiting for a CPU*: the share of the timed window the server's (client's) main "
             "thread was runnable but not running (/proc/<pid>/schedstat), i.e. other work had "
             "its core. A busy-polling pair only makes progress while both of its processes are "
             "on a CPU, and the kernel acknowledges and buffers for a descheduled uvloop process "
             "but nothing does for a descheduled userspace stack; figures with large waits "
             "measure the machine's other load more than the loops." + (
                 f" Every server, client and wrk ran at nice {meta['nice']}, each in its own session "
                 "(autogroup) at that nice too." if meta.get("nice") else ""), ""]
    for section in SECTION_TITLES:
        cids = [c for c, s in summary.items() if s["section"] == section]
        if not cids:
            continue
        bulk = section == "bulk"
        lines += [f"### {SECTION_TITLES[section]}", "",
                  "| case | loop | " + ("Gbit/s | " if bulk else
                                        "req/s | p50 µs | p99 µs | p99.9 µs | ")
                  + "server CPU µs/req | waiting for a CPU: server / client | "
                    "fastloop/uvloop | target met? |",
                  "|---|---|---|" + ("" if bulk else "---|---|---|") + "---|---|---|---|"]
        for cid in cids:
            s = summary[cid]
            for loop in LOOPS:
                if loop not in s:
                    continue
                v = s[loop]
                cells = ([_fmt(v["gbit_per_s"])] if bulk else
                         [_fmt(v["req_per_s"], "rate"), _fmt(v["p50_us"], "us"),
                          _fmt(v["p99_us"], "us"), _fmt(v["p999_us"], "us")])
                cpu = (f"{v['server_cpu_us_per_req'] / 1e6:.2f} s total" if bulk
                       and v["server_cpu_us_per_req"] else _fmt(v["server_cpu_us_per_req"], "us"))
                ratio = verdict = ""
                if loop == "fastloop" and s.get("ratio"):
                    r = s["ratio"]
                    ratio = (f"{r.get('gbit_per_s', 0):.2f}x" if bulk else
                             f"{r.get('req_per_s', 0):.2f}x req/s, {r.get('p99_us', 0):.2f}x p99")
                    verdict = "; ".join(
                        f"{'yes' if t['met'] else '**no**'} ({t['metric'].split('_')[0]} "
                        f"{t['ratio']:.2f}x, target {t['target']})" for t in s["targets"]) or "—"
                rq = " / ".join("—" if v[k] is None else f"{v[k]:.0f}%"
                                for k in ("server_runq_pct", "client_runq_pct"))
                lines.append(f"| {cid} | {loop} | " + " | ".join(cells) +
                             f" | {cpu} | {rq} | {ratio} | {verdict} |")
        lines.append("")
    return "\n".join(lines)


def plots(summary, out, prefix):
    """bench_<section>.png: req/s (Gbit/s for bulk) and latency percentiles per case/loop."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots", file=sys.stderr)
        return []
    written = []
    colors = {"fastloop": "#d62728", "uvloop": "#1f77b4", "asyncio": "#7f7f7f"}
    for section, title in SECTION_TITLES.items():
        cids = [c for c, s in summary.items() if s["section"] == section]
        if not cids:
            continue
        bulk = section == "bulk"
        fig, axes = plt.subplots(1, 1 if bulk else 2, figsize=(11 if not bulk else 6, 4.2),
                                 squeeze=False)
        ax = axes[0][0]
        loops = [l for l in LOOPS if any(l in summary[c] for c in cids)]
        width = 0.8 / len(loops)
        metric = "gbit_per_s" if bulk else "req_per_s"
        for i, loop in enumerate(loops):
            ys = [(summary[c].get(loop) or {}).get(metric) or 0 for c in cids]
            ax.bar([x + i * width for x in range(len(cids))], ys, width, label=loop,
                   color=colors[loop])
        ax.set_xticks([x + width * (len(loops) - 1) / 2 for x in range(len(cids))])
        ax.set_xticklabels(cids, rotation=15, fontsize=8)
        ax.set_ylabel("Gbit/s" if bulk else "requests/s")
        if not bulk:
            ax.set_yscale("log")
        ax.set_title("throughput")
        ax.legend(fontsize=8)
        if not bulk:
            ax = axes[0][1]
            labels, k = [], 0
            for c in cids:
                for loop in loops:
                    v = summary[c].get(loop)
                    if not v:
                        continue
                    for j, (p, shade) in enumerate((("p50_us", 1.0), ("p99_us", 0.65),
                                                    ("p999_us", 0.35))):
                        ax.bar(k + (j - 1) * 0.27, v[p] or 0, 0.27, color=colors[loop],
                               alpha=shade)
                    labels.append(f"{c}\n{loop}")
                    k += 1
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=60, fontsize=6)
            ax.set_yscale("log")
            ax.set_ylabel("µs (bars: p50, p99, p99.9)")
            ax.set_title("latency percentiles")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        path = Path(out) / f"{prefix}_{section}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
