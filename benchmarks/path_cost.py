"""Instructions per unit of work on the bench's fastloop paths: per segment of the bulk
transfer, or per connection of the connections/s case (connect, one exchange, close). The
pair is benchmarks/bench_peer.py's (two processes over net_memif), one side under callgrind.

    python benchmarks/path_cost.py [--kind bulk|conn|conn-loop] [--side server|client]
                                   [--sizes 16,80] [--mtu 9000] [--nice -15] [--perf]

The measured side runs under `valgrind --tool=callgrind` twice, a small and a large run
(bulk: MiB sent; conn: seconds timed); the difference in instructions over the difference in
units that side handled (bulk: data segments in at the server, out at the client; conn:
passive opens at the server, active opens at the client) is the cost of one more unit, with
start-up and connect cancelled out. The other side runs at full speed, so the measured one
is the bottleneck and seldom idle. Prints one JSON line and the functions whose exclusive
instructions grew most. Counts do not depend on the machine's load, unlike the rates; the
conn pair's do depend on how much the measured side idles (±30 %). conn-loop is
benchmarks/conn_loop.py instead: client and server on one loop in stack-loopback mode, N
cycles a run (--sizes, default 200,1000), no second process and no idle polling: the cost
of a whole cycle, both sides together.
(callgrind counts each byte of a `rep movsb` copy, glibc's memcpy above 2 KiB, as an
instruction: there memcpy's count is about the bytes copied.)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l3_pingpong as l3                                     # noqa: E402  Proc, _env
from run import Priority                                     # noqa: E402  --nice

REPO = l3.REPO
PEER = REPO / "benchmarks" / "bench_peer.py"
PERF_DELAY_MS = 2500           # --perf: past start-up, the link and the client's CRC of the data


def run_once(kind, side, size, workdir, mtu, tag, tool="callgrind"):
    """One bulk transfer of `size` MiB or `size` seconds of conn; returns (total Ir of `side`
    (perf: the client's result), its TCP counters, the profile's file)."""
    sock = Path(workdir) / f"{tag}.sock"
    out = Path(workdir) / f"callgrind.{tag}.out"
    net = f"10.{200 + os.getpid() % 50}.{(os.getpid() // 50 + len(tag)) % 256}"
    iface = f"memif:{sock},role=%s,socket-abstract=no"
    common = ["--loop", "fastloop", "--kind", kind, "--port", "7000"]
    extra = ["--mtu", str(mtu)] if mtu else []
    vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    if tool == "perf":
        vg = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-o", str(out),
              "-D", str(PERF_DELAY_MS)]
    srv_argv = [sys.executable, str(PEER), "server", *common, "--host", f"{net}.1",
                "--iface", iface % "server", "--address", f"{net}.1/24", "--tap-peer", "",
                *extra]
    cli_argv = [sys.executable, str(PEER), "client", *common, "--host", f"{net}.1",
                "--iface", iface % "client", "--address", f"{net}.2/24", "--tap-peer", "",
                *(["--total", str(size << 20)] if kind == "bulk" else
                  ["--seconds", str(size), "--conns", "8"]), *extra]
    if side == "server":
        srv_argv = vg + srv_argv
    else:
        cli_argv = vg + cli_argv
    srv = cli = None
    try:
        srv = l3.Proc("server", srv_argv, env=l3._env(), preexec_fn=Priority.preexec())
        srv.wait_line(srv.out, lambda l: '"ready"' in l, 300, "ready line")
        cli = l3.Proc("client", cli_argv, env=l3._env(), preexec_fn=Priority.preexec())
        res = json.loads(cli.wait_line(cli.out, lambda l: '"ok"' in l, 1800, "result line"))
        srv.stop()
        cli.stop()
        stopped = [json.loads(l) for l in srv.out_lines if '"stopped"' in l]
        if not res["ok"] or not stopped:
            raise SystemExit(f"{kind} run failed: {res}\n{srv.tail()}\n{cli.tail()}")
        tcp = stopped[-1]["tcp"] if side == "server" else res["client_tcp_counters"]
        if tool == "perf":
            return res, tcp, out
        return total_ir(out), tcp, out
    finally:
        for p in (srv, cli):
            if p is not None:
                p.stop()
        sock.unlink(missing_ok=True)


def total_ir(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def conn_loop(sizes, workdir):
    """Instructions per connect/exchange/close cycle of benchmarks/conn_loop.py."""
    totals = []
    for n in sizes:
        out = Path(workdir) / f"callgrind.loop{n}.out"
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            "--dump-instr=no", sys.executable,
                            str(REPO / "benchmarks" / "conn_loop.py"), str(n)],
                           capture_output=True, text=True, env=l3._env(), cwd=REPO)
        if r.returncode != 0:
            raise SystemExit(f"conn_loop.py {n} failed:\n{r.stdout}{r.stderr[-2000:]}")
        totals.append(total_ir(out))
    return (totals[1] - totals[0]) / (sizes[1] - sizes[0])


def functions(path):
    """{function: exclusive Ir} from callgrind_annotate."""
    r = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                        str(path)], capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines()[1:]:
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r"'\d+", "", m.group(2))        # recursion depth suffixes
            out[name] = out.get(name, 0) + int(m.group(1).replace(",", ""))
    return out


def short(fn):
    """'file:function [object]' -> 'function (object basename)'."""
    m = re.match(r"(?:.*?:)?([^:\[]+?)\s*(?:\[(.*)\])?$", fn)
    if not m:
        return fn
    obj = os.path.basename(m.group(2)) if m.group(2) else ""
    return f"{m.group(1)} ({obj})" if obj else m.group(1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=("bulk", "conn", "conn-loop"), default="bulk")
    ap.add_argument("--side", choices=("server", "client"), default="server")
    ap.add_argument("--sizes", default=None,
                    help="the two runs: MiB sent (bulk, default 16,80) or seconds (conn, 1,3)")
    ap.add_argument("--mtu", type=int, default=None, help="StackConfig.mtu of both ends")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--keep", default=None, help="a directory for the callgrind output files")
    ap.add_argument("--perf", action="store_true",
                    help="instead: one run of the larger size at full speed, the side sampled "
                         "by `perf record -e cpu-clock`; prints perf report's top symbols")
    ap.add_argument("--nice", type=int, default=0, help="both processes at this nice level "
                    "(as python -m fastloop bench --nice)")
    args = ap.parse_args(argv)
    Priority.nice = args.nice
    default = {"bulk": "16,80", "conn": "1,3", "conn-loop": "200,1000"}[args.kind]
    small, large = (int(x) for x in (args.sizes or default).split(","))
    if args.kind == "conn-loop":
        with tempfile.TemporaryDirectory(prefix="fl-pathcost-") as tmp:
            per = conn_loop((small, large), args.keep or tmp)
        print(json.dumps({"kind": "conn-loop", "cycles": [small, large],
                          "instructions_per_cycle": round(per)}))
        return 0
    key = {("bulk", "server"): "segments_in", ("bulk", "client"): "segments_out",
           ("conn", "server"): "passive_opens", ("conn", "client"): "active_opens"}[
        (args.kind, args.side)]
    unit = "segment" if args.kind == "bulk" else "connection"
    with tempfile.TemporaryDirectory(prefix="fl-bulkcost-") as tmp:
        wd = args.keep or tmp
        if args.perf:
            res, tcp, out = run_once(args.kind, args.side, large, wd, args.mtu, "p", tool="perf")
            print(json.dumps({"kind": args.kind, "side": args.side, "mtu": args.mtu,
                              "rate": round(res.get("gbit_per_s") or res["req_per_s"], 2),
                              key: tcp[key]}))
            r = subprocess.run(["perf", "report", "-i", str(out), "--stdio", "--no-children",
                                "--sort", "dso,symbol", "--percent-limit", "0.7"],
                               capture_output=True, text=True)
            print("\n".join(l for l in r.stdout.splitlines() if l and not l.startswith("#")))
            return 0
        ir0, tcp0, out0 = run_once(args.kind, args.side, small, wd, args.mtu, "a")
        ir1, tcp1, out1 = run_once(args.kind, args.side, large, wd, args.mtu, "bb")
        units = tcp1[key] - tcp0[key]
        out = {"kind": args.kind, "side": args.side, "mtu": args.mtu, "sizes": [small, large],
               key: units, "instructions": ir1 - ir0,
               f"instructions_per_{unit}": round((ir1 - ir0) / units),
               "segments_in": tcp1.get("segments_in", 0) - tcp0.get("segments_in", 0),
               "segments_out": tcp1.get("segments_out", 0) - tcp0.get("segments_out", 0)}
        if args.kind == "bulk":
            out["instructions_per_kib"] = round((ir1 - ir0) / ((large - small) << 10), 1)
        print(json.dumps(out))
        f0, f1 = functions(out0), functions(out1)
        diff = sorted(((f1[k] - f0.get(k, 0), k) for k in f1), reverse=True)
        for ir, fn in diff[:args.top]:
            print(f"{ir / (ir1 - ir0) * 100:5.1f}%  {ir / units:8.0f} per {unit}  "
                  f"{short(fn)[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
