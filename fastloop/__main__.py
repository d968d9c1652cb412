"""`python -m fastloop {doctor,up}`."""
from __future__ import annotations

import argparse
import importlib
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
                        add_help=False)
    # `up`'s own options belong to fastloop.cli_up, which parses args.argv itself.
    up.add_argument("argv", nargs=argparse.REMAINDER)
    up.set_defaults(run=_run_up)
    return parser


def _run_doctor(args) -> int:
    from fastloop import doctor
    return doctor.main(args)


def _run_up(args) -> int:
    try:
        cli_up = importlib.import_module("fastloop.cli_up")
    except ModuleNotFoundError as e:
        if e.name != "fastloop.cli_up":
            raise
        print("python -m fastloop up: not available in this build (fastloop.cli_up is missing)",
              file=sys.stderr)
        return 2
    return cli_up.main(args)


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["up"]:
        # argparse's REMAINDER drops a leading "--option" in a subcommand: hand `up` all of it
        args = argparse.Namespace(command="up", argv=argv[1:], run=_run_up)
    else:
        args = parser.parse_args(argv)
    rc = args.run(args)
    return 0 if rc is None else int(rc)


if __name__ == "__main__":
    sys.exit(main())
