"""A fork() child must not use its parent's EAL (found by CPython's
test_get_event_loop_new_process, which runs a loop in a ProcessPoolExecutor child)."""
import os

from fastloop.dev.eal import EalError, current_eal, eal_init


def test_a_forked_child_cannot_use_the_parents_eal(eal):
    assert current_eal() is eal
    pid = os.fork()
    if pid == 0:                        # the child: report through the exit status only
        code = 0
        try:
            if current_eal() is not None:
                code = 2
            else:
                eal_init()
                code = 3                # no error: the child would share the parent's DPDK
        except EalError as exc:
            code = 0 if "forked child" in str(exc) else 4
        except BaseException:
            code = 5
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert current_eal() is eal and eal_init() is eal      # the parent's is untouched
