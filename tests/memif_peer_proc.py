"""A child process for memif tests: a Stack from the environment (FASTLOOP_*) that pings
argv[1] until the first answer (the memif peer is connected, ARP resolved), then argv[2]
more times with 1400-byte payloads, so that every ring slot and buffer of the memif regions
has carried a frame both ways. It prints "... Ctrl-C to stop" (what
peer_proc.UpProcess.wait_ready waits for), then polls until SIGTERM or, with argv[3] ==
"close-on-link-down", until the peer leaves (link down), closes, and prints a last line
(with the mbufs still in use); "flood-until-link-down" the same, sending echo requests all the while (bursts both ways
as the peer's teardown runs)."""
import signal
import sys
import time

from fastloop.config import StackConfig
from fastloop.dev.eal import current_eal
from fastloop.stack import Stack


def fill_rings(stack, dst, count, batch=32):
    """Echo requests in batches (not one round trip each); returns the replies counted."""
    _, start = stack.iface.echo_replies(0)
    for first in range(0, count, batch):
        n = min(batch, count - first)
        for seq in range(first, first + n):
            stack.iface.send_echo(dst, seq, 1400)
        want = start + first + n      # echo_replies(want) lists nothing until it is reached
        stack.run(duration=1.0, until=lambda: stack.iface.echo_replies(want)[1] >= want)
    return stack.iface.echo_replies(start + count)[1] - start


def main():
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    dst, count = sys.argv[1], int(sys.argv[2])
    on_link_down = sys.argv[3:4] in (["close-on-link-down"], ["flood-until-link-down"])
    flood = sys.argv[3:4] == ["flood-until-link-down"]
    stack = Stack(StackConfig.from_env())
    print("memif peer: port up", flush=True)     # a memif server listens from here on
    how = "SIGTERM"
    try:
        deadline = time.monotonic() + 10.0
        while stack.ping(dst, count=1, timeout=0.25)[0] is None:
            if time.monotonic() > deadline:
                print(f"memif peer: no answer from {dst}", flush=True)
                return 1
        answered = fill_rings(stack, dst, count)
        print(f"memif peer: {answered} of {count} pings answered by {dst}; Ctrl-C to stop",
              flush=True)
        if on_link_down:
            # close the moment the PMD marks the link down: its interrupt thread is then
            # in the middle of tearing the connection down
            deadline = time.monotonic() + 30
            while flood and stack.device.link_up and time.monotonic() < deadline:
                for seq in range(32):       # frames in flight both ways as the peer goes
                    stack.iface.send_echo(dst, seq, 1400)
                stack.run(duration=0.0002)
            stack.run(duration=30, until=lambda: not stack.device.link_up)
            how = "link down" if not stack.device.link_up else "timeout"
        else:
            stack.run()
    except KeyboardInterrupt:
        pass
    finally:
        stack.close()
    # the pool's books after the port closed: every mbuf of the flood came back
    print(f"memif peer: stopped ({how}); {current_eal().mbufs_in_use} mbufs in use", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
