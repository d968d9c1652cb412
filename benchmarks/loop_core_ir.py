"""Instruction counts per operation for benchmarks/loop_core.py's workloads (callgrind).

    python benchmarks/loop_core_ir.py [--only call_soon,task] [--kinds uvloop,fastloop] [--n 20000]
                                      [--tree PATH]   (another fastloop checkout, built)

Each (kind, workload) runs under `valgrind --tool=callgrind` twice, with N and 2N operations
(after a 1000-operation warm-up in the same process); (Ir(2N) - Ir(N)) / N is the cost of one
operation with the start-up and the warm-up cancelled out. Instruction counts do not depend on
the other load on the machine, unlike the ns/op of loop_core.py.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import loop_core  # noqa: E402


def child(kind, workload, n, tree):
    sys.path.insert(0, tree)                # ahead of the checkout loop_core.py put first
    loops = loop_core.Loops()
    try:
        loop_core.run_one(loops, kind, workload, 1000)
        loop_core.run_one(loops, kind, workload, n)
    finally:
        loops.close()


def instructions(kind, workload, n, tree):
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
             sys.executable, __file__, "--child", kind, workload, str(n), str(tree)],
            capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode != 0 or m is None:
            raise SystemExit(f"{kind} {workload}: callgrind failed:\n{out.stderr[-3000:]}")
        return int(m.group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="call_soon,call_later,future,task")
    ap.add_argument("--kinds", default="uvloop,fastloop")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--tree", default=str(HERE.parent), help="the fastloop checkout to load")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, workload, n, tree = args.child
        return child(kind, workload, int(n), tree)
    kinds = args.kinds.split(",")
    print("| workload | " + " | ".join(f"{k} Ir/op" for k in kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for workload in args.only.split(","):
        per_op = [(instructions(k, workload, 2 * args.n, args.tree)
                   - instructions(k, workload, args.n, args.tree)) / args.n for k in kinds]
        print(f"| {workload} | " + " | ".join(f"{v:,.0f}" for v in per_op) + " |", flush=True)


if __name__ == "__main__":
    main()
