"""`python -m fastloop bench`: fastloop beside uvloop (and stdlib asyncio), same machine, one run.

    python -m fastloop bench [--quick] [--repeat 3] [--seconds 2] [--cases echo-proto,http]
                             [--loops fastloop,uvloop,asyncio] [--out benchmarks/results]

Each case runs every loop as a server/client pair of processes (benchmarks/bench_peer.py),
back to back, server pinned to --server-cpu (1), client to --client-cpu (0); the order of
the loops alternates between repeats and cases (this 2-vCPU guest is noisy). Pairs:
  fastloop ↔ fastloop   two processes over net_memif, both busy-polling
  uvloop ↔ uvloop       kernel loopback (127.0.0.1)
  asyncio ↔ asyncio     kernel loopback, for reference
  http: wrk (kernel) → fastloop's aiohttp over net_tap / → uvloop's (asyncio's) on loopback
Cases: echo (Protocol and streams; 64 B and 16 KiB; 1 and 32 connections), aiohttp hello
world (wrk -t1 -c32), bulk (one connection, 1 GiB, checked by length and CRC-32) and
connections per second (connect, one 64 B exchange, close; 8 in parallel).

Reported per case and loop: the median over repeats of req/s, p50/p99/p99.9 latency and the
server's CPU per request (its utime+stime over the client's timed window), and the
fastloop/uvloop ratios against the issue's targets. fastloop busy-polls: it spins a core
where uvloop sleeps, so its CPU per request is its wall time per request.
Writes <out>/bench.json, bench.md and bench_<section>.png (--quick: bench_quick.*).

Process hygiene: every child is stopped by its PID (SIGTERM, then SIGKILL) in a finally, the
server before the client (DPDK 22.11's memif server must not see its client vanish first),
memif sockets, taps and EAL runtime directories removed.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l3_pingpong as l3                                     # noqa: E402  Proc, machine, _pin

REPO = l3.REPO
PEER = REPO / "benchmarks" / "bench_peer.py"
OUT = REPO / "benchmarks" / "results"
LOOPS = ("fastloop", "uvloop", "asyncio")
READY_TIMEOUT = 40.0
HELLO = "Hello, World!"

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
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


class BenchError(RuntimeError):
    pass


def case_id(kind, size, conns):
    if kind == "http":
        return f"http c{conns}"
    if kind == "bulk":
        return "bulk"
    if kind == "conn":
        return f"conn x{conns}"
    return f"{kind} {size if size < 1024 else str(size // 1024) + 'K'}B c{conns}"


class Names:
    """Per-run names no other process here uses: subnets 10.200-249.x/24, taps flb<pid><n>."""

    def __init__(self):
        self._n = itertools.count(1)

    def subnet(self):
        n = (os.getpid() * 13 + next(self._n) * 7) % (50 * 256)
        return f"10.{200 + n // 256}.{n % 256}"

    def tap(self):
        return f"flb{os.getpid() % 100000}{next(self._n)}"[:15]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid):
    clk = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / clk




def runq_wait_s(pid):
    """Seconds pid's main thread waited for a CPU (/proc/<pid>/schedstat, second field)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class Priority:
    """--nice N for every child (the same for every loop). With autogroup scheduling
    (/proc/sys/kernel/sched_autogroup_enabled) a nice value only ranks a process within its
    session, and sessions share a CPU fairly; so each child gets its own session (setsid) and
    that session's autogroup the nice value too."""
    nice = 0

    @classmethod
    def preexec(cls):
        if not cls.nice:
            return None
        n = cls.nice

        def setup():                                  # in the child, before exec
            os.setsid()
            try:
                with open("/proc/self/autogroup", "w") as f:
                    f.write(str(n))
            except OSError:
                pass                                  # no autogroup: the nice value is enough
            os.setpriority(os.PRIO_PROCESS, 0, n)
        return setup


def _proc(name, argv):
    return l3.Proc(name, argv, env=l3._env(), preexec_fn=Priority.preexec())


def _peer(role, cpu, loop, kind, **kw):
    argv = l3._pin(cpu) + [sys.executable, str(PEER), role, "--loop", loop, "--kind", kind]
    for k, v in kw.items():
        if v is not None:
            argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


def _json(proc, key, timeout, what):
    line = proc.wait_line(proc.out, lambda l: l.startswith("{") and f'"{key}"' in l, timeout,
                          what)
    return json.loads(line)


def _cleanup_eal(*procs):
    for p in procs:
        if p is not None:
            shutil.rmtree(l3.DPDK_RUNDIR / f"fastloop-{p.pid}", ignore_errors=True)


def _remove_tap(name):
    if name and Path(f"/sys/class/net/{name}").exists():
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def run_pair(case, loop, opts, workdir, names, tag):
    """One server and one client (or wrk); returns the client's result dict."""
    section, kind, size, conns = case
    if kind == "http":
        return run_http(loop, opts, names)
    srv = cli = None
    sock = Path(workdir) / f"{tag}.sock"
    port = free_port() if loop != "fastloop" else 7000
    try:
        if loop == "fastloop":
            net = names.subnet()
            host = f"{net}.1"
            iface = f"memif:{sock},role=%s,socket-abstract=no"
            sargs = dict(iface=iface % "server", address=f"{net}.1/24", tap_peer="")
            cargs = dict(iface=iface % "client", address=f"{net}.2/24", tap_peer="")
        else:
            host, sargs, cargs = "127.0.0.1", {}, {}
        srv = _proc(f"{loop}-server", _peer("server", opts.server_cpu, loop, kind, host=host,
                                            port=port, **sargs))
        _json(srv, "ready", READY_TIMEOUT, "ready line")
        total = opts.bulk_bytes if kind == "bulk" else None
        cli = _proc(f"{loop}-client", _peer(
            "client", opts.client_cpu, loop, kind, host=host, port=port, size=size,
            conns=conns, seconds=opts.seconds, warmup=opts.warmup, total=total,
            server_pid=srv.pid, **cargs))
        budget = READY_TIMEOUT + opts.warmup + opts.seconds + 60 + (
            (total or 0) / (20 << 20))             # bulk: at least 20 MiB/s
        result = _json(cli, "ok", budget, "result line")
        srv.stop()
        stopped = [json.loads(l) for l in srv.out_lines if '"stopped"' in l]
        if srv.p.returncode != 0 or not stopped:
            raise BenchError(f"{srv.name} exited with {srv.p.returncode}\n{srv.tail()}")
        result["server"] = stopped[-1]
        cli.stop()
        if not result["ok"]:
            raise BenchError(f"{case_id(kind, size, conns)} {loop}: {json.dumps(result)}\n"
                             f"{cli.tail()}\n{srv.tail()}")
        return result
    finally:
        for p in (srv, cli):                        # the server first (memif)
            if p is not None:
                p.stop()
        sock.unlink(missing_ok=True)
        _cleanup_eal(srv, cli)


def http_get(url, timeout=15.0):
    """GET until the first answer (a tap's kernel side comes up asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)                        # retry pacing, not a wait for a condition


def run_http(loop, opts, names):
    srv = tap = wrk = None
    port = free_port() if loop != "fastloop" else 8080
    lua = Path(opts.workdir) / "report.lua"
    lua.write_text(WRK_LUA)
    try:
        if loop == "fastloop":
            net, tap = names.subnet(), names.tap()
            host = f"{net}.2"
            sargs = dict(iface=f"tap:{tap}", address=f"{net}.2/24", tap_peer=f"{net}.1")
        else:
            host, sargs = "127.0.0.1", {}
        srv = _proc(f"{loop}-http", _peer("server", opts.server_cpu, loop, "http", host=host,
                                          port=port, **sargs))
        _json(srv, "ready", READY_TIMEOUT, "ready line")
        url = f"http://{host}:{port}/"
        for _ in range(3):                           # warm: ARP, the first connections
            status, body = http_get(url)
            if status != 200 or body != HELLO:
                raise BenchError(f"GET {url} from {loop}: {status} {body!r}")
        argv = l3._pin(opts.client_cpu) + ["wrk", "-t1", f"-c{opts.http_conns}",
                                      f"-d{opts.wrk_seconds}s", "--latency", "-s", str(lua), url]
        cpu0, rq0 = proc_cpu_s(srv.pid), runq_wait_s(srv.pid)
        t0 = time.monotonic()
        wrk = subprocess.run(argv, capture_output=True, text=True,
                             timeout=opts.wrk_seconds + 60, preexec_fn=Priority.preexec())
        wall = time.monotonic() - t0
        cpu = proc_cpu_s(srv.pid) - cpu0
        rq1 = runq_wait_s(srv.pid)
        line = next((l for l in wrk.stdout.splitlines() if l.startswith("WRKJSON ")), None)
        if wrk.returncode != 0 or line is None:
            raise BenchError(f"wrk against {loop}: rc {wrk.returncode}\n{wrk.stdout}\n{wrk.stderr}")
        w = json.loads(line[len("WRKJSON "):])
        status, body = http_get(url)                 # still serving, still right
        errors = {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]}
        secs = w["duration_us"] / 1e6
        result = {"ok": not errors and w["requests"] > 0 and status == 200 and body == HELLO,
                  "requests": w["requests"], "seconds": secs, "req_per_s": w["requests"] / secs,
                  "p50_us": w["p50_us"], "p99_us": w["p99_us"], "p999_us": w["p999_us"],
                  "max_us": w["max_us"], "bad_replies": 0, "errors": errors,
                  "server_cpu_s": cpu, "server_cpu_us_per_req": cpu / max(1, w["requests"]) * 1e6,
                  "wall_s": wall, "loop": loop, "kind": "http", "conns": opts.http_conns,
                  "server": {"pid": srv.pid}, "tap": tap,
                  "server_runq_wait_s": None if rq0 is None or rq1 is None else rq1 - rq0,
                  "client_runq_wait_s": None,
                  "wrk_requests_per_s_line": next((l.split()[-1] for l in wrk.stdout.splitlines()
                                                   if l.startswith("Requests/sec")), None)}
        srv.stop()
        if srv.p.returncode != 0:
            raise BenchError(f"{srv.name} exited with {srv.p.returncode}\n{srv.tail()}")
        if not result["ok"]:
            raise BenchError(f"http {loop}: {json.dumps(result)}\n{wrk.stdout}\n{srv.tail()}")
        return result
    finally:
        if srv is not None:
            srv.stop()
        _cleanup_eal(srv)
        _remove_tap(tap)


# ---- summary --------------------------------------------------------------------------------
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
             "net_memif between two processes (http: net_tap from the kernel's wrk); uvloop's "
             "and asyncio's over kernel loopback.", "",
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


def versions():
    v = {}
    for mod in ("uvloop", "aiohttp"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = None
    r = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    v["wrk"] = (r.stdout + r.stderr).split("\n")[0].strip() or None
    return v


def build_args(argv):
    ap = argparse.ArgumentParser(prog="python -m fastloop bench",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: one repeat, 0.5 s per case, 1 s of wrk, 32 MiB bulk")
    ap.add_argument("--repeat", type=int, default=None, help="runs per pair (default 3)")
    ap.add_argument("--seconds", type=float, default=None, help="timed window (default 2)")
    ap.add_argument("--warmup", type=float, default=None, help="default 0.3")
    ap.add_argument("--wrk-seconds", type=int, default=None, help="default 5")
    ap.add_argument("--bulk-bytes", type=int, default=None, help="default 1 GiB")
    ap.add_argument("--http-conns", type=int, default=32)
    ap.add_argument("--cases", default="",
                    help="comma-separated sections (echo-proto, echo-stream, http, bulk, conn) "
                         "or case ids ('echo-proto 64B c1'); default all")
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--nice", type=int, default=0,
                    help="run every server, client and wrk at this nice level (e.g. -10 on a "
                         "machine shared with other work; the same for every loop)")
    a = ap.parse_args(argv)
    q = a.quick
    for name, full, quick in (("repeat", 3, 1), ("seconds", 2.0, 0.5), ("warmup", 0.3, 0.2),
                              ("wrk_seconds", 5, 1), ("bulk_bytes", 1 << 30, 32 << 20)):
        if getattr(a, name) is None:
            setattr(a, name, quick if q else full)
    a.loops = [x.strip() for x in a.loops.split(",") if x.strip()]
    if not a.loops or any(x not in LOOPS for x in a.loops):
        ap.error(f"--loops: from {', '.join(LOOPS)}")
    want = [x.strip() for x in a.cases.split(",") if x.strip()]
    a.case_list = [c for c in CASES if not want or c[0] in want or case_id(*c[1:]) in want]
    if not a.case_list:
        ap.error("--cases matched nothing; sections: " + ", ".join(SECTION_TITLES)
                 + "; ids: " + ", ".join(case_id(*c[1:]) for c in CASES))
    if not 1 <= a.repeat <= 20 or not 0 < a.seconds <= 120:
        ap.error("--repeat 1..20, --seconds 0..120")
    return a


def main(argv=None):
    a = build_args(sys.argv[1:] if argv is None else list(argv))
    if os.geteuid() != 0:
        print("warning: DPDK and net_tap need root", file=sys.stderr)
    if "fastloop" in a.loops and (why := l3.fastloop_available()):
        sys.exit(f"fastloop is not built in this tree ({why}): python setup.py build_ext "
                 "--inplace")
    if any(c[1] == "http" for c in a.case_list) and not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk): it drives the http case")
    Priority.nice = a.nice
    names = Names()
    runs = []
    plan = [(rep, ci, c) for rep in range(a.repeat) for ci, c in enumerate(a.case_list)]
    total = sum(len(a.loops) - (c[1] == "http" and False) for _, _, c in plan)
    load = os.getloadavg()[0]
    t_start = time.monotonic()
    print(f"fastloop bench: {len(a.case_list)} cases x {len(a.loops)} loops x {a.repeat} "
          f"repeats; fastloop busy-polls (it spins where uvloop sleeps: see CPU/req)",
          file=sys.stderr, flush=True)
    k = 0
    failures = []
    with tempfile.TemporaryDirectory(prefix="fl-bench-") as tmp:
        a.workdir = tmp
        for rep, ci, case in plan:
            order = a.loops if (rep + ci) % 2 == 0 else a.loops[::-1]
            for loop in order:
                k += 1
                cid = case_id(*case[1:])
                print(f"[{k:>3}/{total}] {time.monotonic() - t_start:5.0f}s  {cid:<22} "
                      f"{loop:<9}", end="", file=sys.stderr, flush=True)
                try:
                    r = run_pair(case, loop, a, tmp, names, f"{rep}-{ci}-{loop}")
                except (BenchError, l3.BenchError) as e:     # recorded; the run goes on
                    failures.append({"case": cid, "loop": loop, "repeat": rep, "error": str(e)})
                    print(f" FAILED\n{e}", file=sys.stderr, flush=True)
                    continue
                runs.append({"case": cid, "section": case[0], "kind": case[1], "size": case[2],
                             "conns": case[3], "loop": loop, "repeat": rep, "result": r})
                lat = (f"p50 {r['p50_us']:.0f} p99 {r['p99_us']:.0f} us"
                       if r.get("p50_us") is not None else "")
                rate = (f"{r['gbit_per_s']:6.2f} Gbit/s" if "gbit_per_s" in r
                        else f"{r['req_per_s']:>10,.0f} req/s")
                cpu = (f"{r['server_cpu_s']:.2f} s" if case[1] == "bulk" else
                       f"{r['server_cpu_us_per_req']:.1f} us/req")
                print(f" {rate}  {lat}  server CPU {cpu}", file=sys.stderr, flush=True)
    summary = summarize(runs)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "command": "python -m fastloop bench " + " ".join(shlex.quote(x) for x in
                                                             (argv if argv is not None
                                                              else sys.argv[1:])),
            "machine": l3.machine(), "versions": versions(), "repeat": a.repeat,
            "seconds": a.seconds, "warmup": a.warmup, "wrk_seconds": a.wrk_seconds,
            "bulk_bytes": a.bulk_bytes, "server_cpu": a.server_cpu, "client_cpu": a.client_cpu,
            "loadavg_before": load, "loadavg_after": os.getloadavg()[0],
            "elapsed_s": time.monotonic() - t_start, "fastloop_idle": "busy-poll",
            "nice": a.nice}
    md = markdown(summary, meta)
    if failures:
        md += "\n**Failed runs:**\n\n" + "\n".join(
            f"- {f['case']} {f['loop']} (repeat {f['repeat']}): "
            f"{f['error'].splitlines()[0][:300]}" for f in failures) + "\n"
    prefix = "bench_quick" if a.quick else "bench"
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{prefix}.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "runs": runs, "failures": failures}, indent=1) + "\n")
    (a.out / f"{prefix}.md").write_text(md + "\n")
    pngs = plots(summary, a.out, prefix)
    print(md)
    print(f"wrote {a.out / (prefix + '.json')}, {prefix}.md, "
          + ", ".join(p.name for p in pngs) + f" in {meta['elapsed_s']:.0f} s", file=sys.stderr)
    if failures:
        print(f"{len(failures)} run(s) failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
