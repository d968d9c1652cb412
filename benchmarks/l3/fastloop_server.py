"""fastloop as the server of the L3 ping-pong benchmark: ARP and ICMP echo, rx → stack → tx.

    python benchmarks/l3/fastloop_server.py --socket /tmp/x.sock --address 10.88.0.2/24 \
        --file-prefix fll3-fastloop [--duration 600]

Serves memif role=server on --socket (a file: socket-abstract=no); busy-polls until --duration passes (a bound, so an
orphan cannot spin forever) or SIGTERM/SIGINT arrives. Prints "fastloop_server: ready" on
stderr once the port exists (the runner waits for that line), and the stack's counters as
one JSON line on stdout when it stops. The runner starts it under `taskset`; EAL keeps the
affinity it was started with.
"""
import argparse
import json
import signal
import sys
from pathlib import Path


def _on_term(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", required=True, help="memif socket path (absolute)")
    ap.add_argument("--iface", help="StackConfig.iface instead of the memif vdev on --socket")
    ap.add_argument("--address", default="10.88.0.2/24", help="our address, CIDR")
    ap.add_argument("--file-prefix", required=True, help="EAL --file-prefix of this process")
    ap.add_argument("--duration", type=float, default=600.0, help="stop after this many seconds")
    args = ap.parse_args(argv)

    repo = Path(__file__).resolve().parents[2]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from fastloop.config import StackConfig
    from fastloop.stack import Stack

    signal.signal(signal.SIGTERM, _on_term)
    # vdev: form with socket-abstract=no, so the socket is a file exactly as for the C
    # reflector whatever default the memif: form picks (DPDK 22.11's default is abstract).
    iface = args.iface or f"vdev:net_memif0,role=server,socket={args.socket},socket-abstract=no"
    cfg = StackConfig(iface=iface, address=args.address,
                      tap_peer=None, eal_args=[f"--file-prefix={args.file_prefix}"])
    st = Stack(cfg)
    try:
        print("fastloop_server: ready", file=sys.stderr, flush=True)
        try:
            st.run(duration=args.duration)
        except KeyboardInterrupt:
            pass
        # a second SIGTERM must not cut the counters and close short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        counters = dict(st.counters())
    finally:
        st.close()
    print(json.dumps({"server": "fastloop", **counters}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
