"""`python -m fastloop bench`: fastloop beside uvloop (and stdlib asyncio), same machine, one run.

    python -m fastloop bench [--quick] [--repeat 3] [--seconds 2] [--cases echo-proto,http]
                             [--loops fastloop,uvloop,asyncio] [--out benchmarks/results]

Each case runs every loop as a server/client pair of processes (benchmarks/bench_peer.py),
back to back, server pinned to --server-cpu (1), client to --client-cpu (0); the order of
the loops alternates between repeats and cases (this 2-vCPU guest is noisy). Pairs:
  fastloop ↔ fastloop   two processes over net_memif at MTU 9000 (--memif-mtu), both
                        busy-polling
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
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l3_pingpong as l3                                     # noqa: E402  Proc, machine, _pin
from bench_report import (CASES, LOOPS, SECTION_TITLES, case_id, markdown,  # noqa: E402
                          plots, summarize)

REPO = l3.REPO
PEER = REPO / "benchmarks" / "bench_peer.py"
OUT = REPO / "benchmarks" / "results"
READY_TIMEOUT = 40.0
MEMIF_MTU = 9000            # fastloop's memif pairs (kernel loopback's MTU is 65536)
HELLO = "Hello, World!"

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
            sargs = dict(iface=iface % "server", address=f"{net}.1/24", tap_peer="",
                         mtu=opts.memif_mtu or None)
            cargs = dict(iface=iface % "client", address=f"{net}.2/24", tap_peer="",
                         mtu=opts.memif_mtu or None)
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
    ap.add_argument("--memif-mtu", type=int, default=MEMIF_MTU,
                    help=f"fastloop's memif pairs: StackConfig.mtu of both ends (default "
                         f"{MEMIF_MTU}; 0: memif's own 1500)")
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
    total = len(plan) * len(a.loops)
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
            "nice": a.nice, "memif_mtu": a.memif_mtu}
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
