"""L3 ping-pong: fastloop's rx → stack → tx beside a plain DPDK C reflector, same device, same run.

    python benchmarks/l3_pingpong.py [--servers c-reflector,fastloop] [--repeat 3]
                                     [--seconds 2] [--window 32]

For each repeat, each server in turn (the order alternates between repeats) serves memif
role=server pinned to --server-cpu; benchmarks/l3/build/pinger (memif role=client, pinned to
--client-cpu) resolves it with ARP and measures (a) ping-pong, one ICMP echo outstanding:
round trips/s and p50/p99 RTT, (b) windowed, W echoes in flight: replies/s. 64-byte frames,
every reply verified (checksums, addresses, ident, seq, payload). Each DPDK process has its
own --file-prefix and each run its own memif socket file (socket-abstract=no; DPDK 22.11
defaults to the abstract namespace) in a temporary directory.

Reported: the median over repeats per server, and the per-packet cost ratio
fastloop ns per round trip / reflector ns per round trip for both modes (< 2 is the goal),
from wall-clock rates and from rates over the time without gaps >= 50 us: on this shared
2-vCPU guest another process's timeslice (4-20 ms) lands in a run often enough to swamp the
wall-clock mean; the p50 RTT ratio is given too.
Writes benchmarks/results/l3_pingpong.json and prints a Markdown table for RESULTS.md.

Both sides busy-poll, so each holds one vCPU at 100%: CPU per round trip is 1 / rate.

Process hygiene: every process started here is stopped by its PID (SIGTERM, then SIGKILL
after a bound) in a `finally`, its socket and /var/run/dpdk/<prefix> removed. The pinger
lingers (port open, not polling) until the server has closed: DPDK 22.11's memif server
crashes in rx_burst if the client disconnects under it (see pinger.c).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import queue
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
L3 = REPO / "benchmarks" / "l3"
BUILD = L3 / "build"
RESULTS = REPO / "benchmarks" / "results" / "l3_pingpong.json"
DPDK_RUNDIR = Path("/var/run/dpdk")
SERVERS = ("c-reflector", "fastloop")
SERVER_IP, CLIENT_IP, PREFIXLEN = "10.88.0.2", "10.88.0.1", 24
EAL_COMMON = ["--no-huge", "-m", "256", "--no-pci", "--no-telemetry", "--log-level=*:warning"]
READY_TIMEOUT = 30.0      # server start: EAL, (for fastloop) Python imports, memif socket
STOP_TIMEOUT = 10.0       # SIGTERM → exit, before SIGKILL


class BenchError(RuntimeError):
    pass


def build(quiet=True):
    """Build reflector and pinger with make (gcc -O2, pkg-config libdpdk) into l3/build/."""
    r = subprocess.run(["make", "-C", str(L3)], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"building benchmarks/l3 failed:\n{r.stdout}\n{r.stderr}")
    if not quiet:
        print(r.stdout, end="")


def fastloop_available() -> str | None:
    """None when `fastloop.stack.Stack` imports from this tree, else why not."""
    r = subprocess.run([sys.executable, "-c", "from fastloop.stack import Stack"],
                       capture_output=True, text=True, env=_env(), cwd=REPO)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _pin(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []


class Proc:
    """A child process whose stdout/stderr lines are drained by threads into queues."""

    def __init__(self, name, argv, env=None, preexec_fn=None):
        self.name, self.argv = name, argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True, env=env, cwd=REPO,
                                  preexec_fn=preexec_fn)
        self.out, self.err = queue.Queue(), queue.Queue()
        self.out_lines, self.err_lines = [], []
        self._threads = [threading.Thread(target=self._drain, args=(s, q, keep), daemon=True)
                         for s, q, keep in ((self.p.stdout, self.out, self.out_lines),
                                            (self.p.stderr, self.err, self.err_lines))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _drain(stream, q, keep):
        for line in stream:
            keep.append(line.rstrip("\n"))
            q.put(line.rstrip("\n"))
        q.put(None)                                   # EOF

    @property
    def pid(self):
        return self.p.pid

    def wait_line(self, q, pred, timeout, what):
        """The first line of `q` matching `pred`, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no {what} within {timeout:.0f} s\n{self.tail()}")
            try:
                line = q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.p.wait(timeout=STOP_TIMEOUT)
                raise BenchError(f"{self.name} exited ({self.p.returncode}) before {what}\n"
                                 f"{self.tail()}")
            if pred(line):
                return line

    def stop(self, sig=signal.SIGTERM):
        """Stop by PID: `sig`, then SIGKILL after STOP_TIMEOUT. Returns the exit status."""
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=STOP_TIMEOUT)
        for t in self._threads:
            t.join(timeout=STOP_TIMEOUT)
        return self.p.returncode

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.stop()

    def tail(self, n=15):
        return "\n".join(f"  {self.name}: {l}" for l in (self.out_lines + self.err_lines)[-n:])


def _json_line(line):
    return line.startswith("{") and line.endswith("}")


def server_argv(server, sock, prefix, cpu, bound_s):
    if server == "c-reflector":
        return _pin(cpu) + [str(BUILD / "reflector"), f"--file-prefix={prefix}", *EAL_COMMON,
                            f"--vdev=net_memif0,role=server,socket={sock},socket-abstract=no",
                            "--", "--ip", SERVER_IP]
    if server == "fastloop":
        return _pin(cpu) + [sys.executable, str(L3 / "fastloop_server.py"), "--socket", str(sock),
                            "--address", f"{SERVER_IP}/{PREFIXLEN}", "--file-prefix", prefix,
                            "--duration", str(bound_s)]
    raise BenchError(f"unknown server {server!r}; known: {', '.join(SERVERS)}")


def run_one(server, workdir, tag, seconds=2.0, window=32, warmup=0.2, server_cpu=1,
            client_cpu=0):
    """One server, one pinger run; returns {"server", "pinger": {...}, "server_counters": {...}}."""
    workdir = Path(workdir)
    sock = workdir / f"{tag}.sock"
    sprefix, cprefix = f"fll3-{os.getpid()}-{tag}-s", f"fll3-{os.getpid()}-{tag}-c"
    pinger_budget = 2 * (seconds + warmup) + 5.0 + 10.0 + 15.0   # both modes, ARP, link, slack
    srv = cli = None
    load = os.getloadavg()[0]       # the machine is shared: > ~0.1 before a run means company
    try:
        srv = Proc(server, server_argv(server, sock, sprefix, server_cpu,
                                       bound_s=READY_TIMEOUT + pinger_budget + 60),
                   env=_env())
        srv.wait_line(srv.err, lambda l: "ready" in l, READY_TIMEOUT, "ready line")
        if not sock.exists():
            raise BenchError(f"{server} is ready but {sock} does not exist\n{srv.tail()}")
        cli = Proc("pinger", _pin(client_cpu) + [
            str(BUILD / "pinger"), f"--file-prefix={cprefix}", *EAL_COMMON,
            f"--vdev=net_memif0,role=client,socket={sock},socket-abstract=no", "--",
            "--ip", CLIENT_IP, "--server-ip", SERVER_IP, "--seconds", str(seconds),
            "--window", str(window), "--warmup", str(warmup), "--linger", str(STOP_TIMEOUT)])
        result = json.loads(cli.wait_line(cli.out, _json_line, pinger_budget, "JSON result"))
        # the server goes first: the pinger holds its port open until the link drops
        rc = srv.stop()
        counters = [json.loads(l) for l in srv.out_lines if _json_line(l)]
        if rc != 0:
            raise BenchError(f"{server} exited with {rc}\n{srv.tail()}")
        cli.wait(STOP_TIMEOUT + 5)
        if not result.get("ok"):
            raise BenchError(f"pinger against {server}: {json.dumps(result)}\n{cli.tail()}")
        return {"server": server, "tag": tag, "loadavg_before": load, "pinger": result,
                "server_counters": counters[-1] if counters else None}
    finally:
        for p in (srv, cli):
            if p is not None:
                p.stop()
        sock.unlink(missing_ok=True)
        for prefix in (sprefix, cprefix):
            shutil.rmtree(DPDK_RUNDIR / prefix, ignore_errors=True)


def _med(runs, key):
    return statistics.median(key(r["pinger"]) for r in runs)


def summarize(runs, servers):
    out = {}
    for s in servers:
        rs = [r for r in runs if r["server"] == s]
        if not rs:
            continue
        rt = _med(rs, lambda p: p["pingpong"]["rt_per_s"])
        wr = _med(rs, lambda p: p["window"]["replies_per_s"])
        rtu = _med(rs, lambda p: p["pingpong"]["rt_per_s_unpreempted"])
        wru = _med(rs, lambda p: p["window"]["replies_per_s_unpreempted"])
        out[s] = {"runs": len(rs), "rt_per_s": rt, "ns_per_rt": 1e9 / rt,
                  "rt_per_s_unpreempted": rtu, "ns_per_rt_unpreempted": 1e9 / rtu,
                  "window_replies_per_s_unpreempted": wru, "ns_per_reply_unpreempted": 1e9 / wru,
                  "preempted_ms": _med(rs, lambda p: (p["pingpong"]["preempt_ns"]
                                                      + p["window"]["preempt_ns"]) / 1e6),
                  "p50_ns": _med(rs, lambda p: p["pingpong"]["p50_ns"]),
                  "p99_ns": _med(rs, lambda p: p["pingpong"]["p99_ns"]),
                  "window_replies_per_s": wr, "ns_per_reply": 1e9 / wr,
                  "window": rs[0]["pinger"]["window"]["window"]}
    if "fastloop" in out and "c-reflector" in out:
        f, c = out["fastloop"], out["c-reflector"]
        out["ratio"] = {"pingpong": f["ns_per_rt"] / c["ns_per_rt"],
                        "window": f["ns_per_reply"] / c["ns_per_reply"],
                        "pingpong_unpreempted": f["ns_per_rt_unpreempted"] / c["ns_per_rt_unpreempted"],
                        "window_unpreempted": f["ns_per_reply_unpreempted"] / c["ns_per_reply_unpreempted"],
                        # less sensitive to preemption of a vCPU than the rates
                        "pingpong_p50": f["p50_ns"] / c["p50_ns"]}
    return out


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), platform.processor())
    dpdk = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                          text=True).stdout.strip()
    return {"cpu": model, "vcpus": os.cpu_count(), "kernel": platform.release(),
            "os": platform.freedesktop_os_release().get("PRETTY_NAME", "")
            if hasattr(platform, "freedesktop_os_release") else "",
            "python": platform.python_version(), "dpdk": dpdk, "host": platform.node()}


def markdown(summary, meta):
    m = meta["machine"]
    w = next((v["window"] for k, v in summary.items() if k != "ratio"), "W")
    lines = [f"### L3 ping-pong over net_memif, 64 B ICMP echo ({meta['date']})", "",
             f"`{meta['command']}`  ",
             f"{m['cpu']}, {m['vcpus']} vCPU, {m['os']}, kernel {m['kernel']}, DPDK {m['dpdk']}, "
             f"Python {m['python']}; `--no-huge`; server on CPU {meta['server_cpu']}, pinger on "
             f"CPU {meta['client_cpu']}, both busy-polling; median of {meta['repeat']} interleaved "
             f"runs of {meta['seconds']} s per mode.", "",
             "Rates are wall-clock; in brackets, over the time without gaps >= 50 µs (another "
             "process's timeslice on a shared vCPU; `preempted` is that time, per run).", "",
             f"| server | ping-pong round trips/s | ns / round trip | RTT p50 / p99 ns "
             f"| window {w}: replies/s | ns / reply | preempted |",
             "|---|---|---|---|---|---|---|"]
    for s in SERVERS:
        if s in summary:
            v = summary[s]
            lines.append(
                f"| {s} | {v['rt_per_s'] / 1e6:.3f}M ({v['rt_per_s_unpreempted'] / 1e6:.3f}M) | "
                f"{v['ns_per_rt']:.0f} ({v['ns_per_rt_unpreempted']:.0f}) | "
                f"{v['p50_ns']:.0f} / {v['p99_ns']:.0f} | "
                f"{v['window_replies_per_s'] / 1e6:.3f}M "
                f"({v['window_replies_per_s_unpreempted'] / 1e6:.3f}M) | "
                f"{v['ns_per_reply']:.0f} ({v['ns_per_reply_unpreempted']:.0f}) | "
                f"{v['preempted_ms']:.0f} ms |")
    if "ratio" in summary:
        r = summary["ratio"]
        lines.append(f"| **cost ratio fastloop / C** | | **{r['pingpong']:.2f}x** "
                     f"({r['pingpong_unpreempted']:.2f}x) | {r['pingpong_p50']:.2f}x (p50) | | "
                     f"**{r['window']:.2f}x** ({r['window_unpreempted']:.2f}x) | |")
    return "\n".join(lines)


def table(runs):
    hdr = (f"{'server':<12} {'run':>4} {'rt/s':>11} {'unpre rt/s':>11} {'p50 ns':>7} "
           f"{'p99 ns':>7} {'max us':>8} {'win/s':>11} {'unpre win/s':>11} {'bad':>4} "
           f"{'lost':>5} {'load':>5}")
    rows = [hdr]
    for r in runs:
        p = r["pinger"]
        rows.append(f"{r['server']:<12} {r['tag'].rsplit('-', 1)[-1]:>4} "
                    f"{p['pingpong']['rt_per_s']:>11,.0f} "
                    f"{p['pingpong']['rt_per_s_unpreempted']:>11,.0f} {p['pingpong']['p50_ns']:>7} "
                    f"{p['pingpong']['p99_ns']:>7} {p['pingpong']['max_ns'] / 1e3:>8,.0f} "
                    f"{p['window']['replies_per_s']:>11,.0f} "
                    f"{p['window']['replies_per_s_unpreempted']:>11,.0f} {p['bad']:>4} {p['pingpong']['lost'] + p['window']['lost']:>5} "
                    f"{r['loadavg_before']:>5.2f}")
    return "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="comma-separated, from: " + ", ".join(SERVERS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="per mode and run")
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--warmup", type=float, default=0.2)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args(argv)
    servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    if not servers or any(s not in SERVERS for s in servers):
        ap.error(f"--servers: choose from {', '.join(SERVERS)}")
    if not 1 <= a.repeat <= 50 or not 0 < a.seconds <= 600 or not 1 <= a.window <= 4096:
        ap.error("--repeat 1..50, --seconds 0..600, --window 1..4096")
    if os.geteuid() != 0:
        print("warning: DPDK usually needs root", file=sys.stderr)
    if "fastloop" in servers and (why := fastloop_available()):
        sys.exit(f"fastloop.stack is not importable in this tree ({why}); build it "
                 "(pip install -e . / python setup.py build_ext --inplace) or run "
                 "--servers c-reflector")
    if not a.no_build:
        build()

    runs = []
    with tempfile.TemporaryDirectory(prefix="fl-l3-") as tmp:
        for rep in range(a.repeat):
            order = servers if rep % 2 == 0 else servers[::-1]     # interleave, alternate
            for s in order:
                r = run_one(s, tmp, f"{s}-{rep}", a.seconds, a.window, a.warmup,
                            a.server_cpu, a.client_cpu)
                runs.append(r)
                p = r["pinger"]
                print(f"  {s:<12} run {rep}: {p['pingpong']['rt_per_s']:>11,.0f} rt/s "
                      f"p50 {p['pingpong']['p50_ns']} ns, window {p['window']['replies_per_s']:>11,.0f}/s",
                      file=sys.stderr, flush=True)

    summary = summarize(runs, servers)
    meta = {"date": datetime.date.today().isoformat(),
            "command": "python " + " ".join(shlex.quote(x) for x in
                                            [os.path.relpath(__file__, REPO)] + sys.argv[1:]),
            "machine": machine(), "repeat": a.repeat, "seconds": a.seconds, "window": a.window,
            "warmup": a.warmup, "server_cpu": a.server_cpu, "client_cpu": a.client_cpu,
            "frame_bytes": 64, "device": "net_memif (server copies), --no-huge"}
    md = markdown(summary, meta)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs,
                                  "markdown": md}, indent=1) + "\n")
    print(table(runs))
    print()
    for s in servers:
        v = summary[s]
        print(f"{s:<12} median: {v['rt_per_s']:,.0f} rt/s ({v['ns_per_rt']:.0f} ns; "
              f"unpreempted {v['rt_per_s_unpreempted']:,.0f}/s), "
              f"p50/p99 {v['p50_ns']:.0f}/{v['p99_ns']:.0f} ns; window {v['window']}: "
              f"{v['window_replies_per_s']:,.0f}/s ({v['ns_per_reply']:.0f} ns; unpreempted "
              f"{v['window_replies_per_s_unpreempted']:,.0f}/s)")
    if "ratio" in summary:
        r = summary["ratio"]
        verdict = "within" if max(r["pingpong"], r["window"]) <= 2.0 else "OVER"
        print(f"per-packet cost ratio fastloop/C: ping-pong {r['pingpong']:.2f}x, "
              f"window {r['window']:.2f}x ({verdict} the 2x goal); unpreempted "
              f"{r['pingpong_unpreempted']:.2f}x / {r['window_unpreempted']:.2f}x; "
              f"RTT p50 {r['pingpong_p50']:.2f}x")
    print(f"\nwrote {os.path.relpath(a.json, REPO)}\n\n{md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
