"""A child process for two-process TCP tests: a Stack from the environment (FASTLOOP_*)
with an echo listener on port argv[1], until SIGTERM. Prints "Ctrl-C to stop" once it is
up (peer_proc.UpProcess.wait_ready waits for that line) and a last line with its books."""
import signal
import sys

from fastloop.config import StackConfig
from fastloop.stack import Stack
from tcp_util import listen_echo


def main():
    stopping = []
    # a flag, not KeyboardInterrupt: raised inside a stack callback (the echo's), the
    # exception is caught and reported by the callback's sink, and SIGTERM would be lost
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    stack = Stack(StackConfig.from_env())
    _, targets = listen_echo(stack.tcp, int(sys.argv[1]))
    print(f"tcp echo on {stack.address}:{sys.argv[1]}; Ctrl-C to stop", flush=True)
    try:
        while not stopping:
            stack.run(duration=0.01)
    except KeyboardInterrupt:
        pass
    tcp = stack.counters()["tcp"]
    errors = sum(len(t.errors) for t in targets)
    stack.close()
    print(f"tcp echo: stopped; {len(targets)} connections, "
          f"{sum(t.received for t in targets)} bytes echoed, {errors} errors, "
          f"{tcp['retransmits_rto']} rto {tcp['sack_recoveries']} sack recoveries", flush=True)


if __name__ == "__main__":
    main()
