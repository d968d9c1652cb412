"""`python -m fastloop {doctor,up,demo,bench}`."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastloop",
        description="fastloop: an asyncio event loop on a userspace TCP/IP stack over DPDK")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    doctor = sub.add_parser("doctor", help="check that this machine can run fastloop",
                            description="Check Python, DPDK, PMDs, /dev/net/tun, hugepages, "
                                        "privileges, iproute2 and the FASTLOOP_* configuration.")
    doctor.add_argument("--probe", action="store_true",
                        help="also start DPDK's EAL and open a net_ring pair")
    doctor.set_defaults(run=_run_doctor)

    up = sub.add_parser("up", help="bring a stack up from the FASTLOOP_* configuration",
                        description="Bring the stack up (default: net_tap fl0, 10.77.0.2/24), "
                                    "answer ARP and ping until Ctrl-C, then remove it.")
    up.add_argument("--duration", type=float, default=None,
                    help="stop after this many seconds (default: run until Ctrl-C)")
    up.set_defaults(run=_run_up)

    demo = sub.add_parser("demo", help="serve an aiohttp app on the userspace stack",
                          description="Bring the stack up (default: net_tap fl0, 10.77.0.2/24) "
                                      "and serve an aiohttp app on it: /, /json, "
                                      "/stream?size=N, POST /upload.")
    demo.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    demo.add_argument("--check", action="store_true",
                      help="fetch every route from the kernel side with curl, verify the "
                           "bodies, and exit 0 (or 1 naming what failed)")
    demo.add_argument("--duration", type=float, default=None,
                      help="stop after this many seconds (default: until Ctrl-C)")
    demo.set_defaults(run=_run_demo)

    sub.add_parser("bench", add_help=False,
                   help="fastloop beside uvloop and asyncio: echo, streams, aiohttp (wrk), "
                        "bulk, connections/s; JSON, Markdown and PNG under benchmarks/results "
                        "(python -m fastloop bench --help)")
    return parser


def _run_doctor(args) -> int:
    from fastloop import doctor
    return doctor.main(args)


def _run_up(args) -> int:
    from fastloop import cli_up
    return cli_up.main(args)


def _run_demo(args) -> int:
    from fastloop import demo
    return demo.main(args)


def _run_bench(argv) -> int:
    """benchmarks/run.py lives beside the package, in the source tree, not inside it."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    if not path.exists():
        print(f"python -m fastloop bench: {path} not found (it runs from a source checkout)",
              file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("fastloop_bench_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:            # its own parser: --help and options pass through
        return _run_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    rc = args.run(args)
    return 0 if rc is None else int(rc)


if __name__ == "__main__":
    sys.exit(main())
