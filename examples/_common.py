"""What the examples share: the stack's configuration from the FASTLOOP_* environment (default:
net_tap fl0, 10.77.0.2/24, the kernel side 10.77.0.1) and a loop factory for fastloop.run."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastloop                                    # noqa: E402
from fastloop.config import StackConfig            # noqa: E402

CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")


def run(main):
    config = StackConfig.from_env()
    return fastloop.run(main, loop_factory=lambda: fastloop.new_event_loop(config))
