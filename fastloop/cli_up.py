"""`python -m fastloop up`: bring a stack up from the environment and serve ARP and ping."""
from __future__ import annotations

import signal
import sys

from fastloop.config import ConfigError, StackConfig


def _describe(stack, config) -> str:
    spec = config.iface_spec()
    lines = [f"fastloop up: {stack.address} ({config.address}) mac {stack.mac} "
             f"on {stack.device.name} ({stack.device.driver}), mtu {stack.iface.mtu}"]
    offl = [k for k, v in stack.device.offloads.items() if v]
    lines.append(f"  checksum offloads: {', '.join(offl) if offl else 'none (software)'}")
    if spec.kind == "tap" and config.tap_peer:
        lines.append(f"  kernel side: {spec.target} with {config.tap_peer}; "
                     f"try: ping {stack.address}")
    elif spec.kind == "memif":
        lines.append(f"  memif socket {spec.target}: attach a memif peer to reach it")
    if config.pcap:
        lines.append(f"  tracing every frame to {config.pcap}")
    lines.append("  Ctrl-C to stop")
    return "\n".join(lines)


def main(args) -> int:
    from fastloop.stack import Stack
    try:
        config = StackConfig.from_env()
    except ConfigError as e:
        print(f"fastloop up: {e}", file=sys.stderr)
        return 2
    # SIGTERM stops as Ctrl-C does, so the tap is removed and the port closed either way
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack = Stack(config)
    except OSError as e:
        print(f"fastloop up: {e}", file=sys.stderr)
        return 1
    print(_describe(stack, config), flush=True)
    try:
        stack.run(duration=args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        counters = stack.counters()
        stack.close()
    print(f"fastloop up: stopped; rx {counters['rx_frames']} tx {counters['tx_frames']} frames, "
          f"{counters['icmp_echo_replies_out']} pings answered, {counters['dropped']} dropped",
          flush=True)
    return 0
