"""fastloop: an asyncio event loop on a userspace TCP/IP stack over DPDK.

    import fastloop
    fastloop.run(main())                                   # like asyncio.run / uvloop.run
    asyncio.Runner(loop_factory=fastloop.new_event_loop)   # Python 3.11+
    fastloop.install()                                     # the policy, as uvloop.install()

The stack's configuration comes from the FASTLOOP_* environment (fastloop.StackConfig);
`new_event_loop(stack=StackConfig(...))` passes one explicitly, `stack=False` keeps every
socket on the kernel.
"""
import asyncio as __asyncio

from fastloop.config import ConfigError, StackConfig

__all__ = ("new_event_loop", "run", "install", "EventLoopPolicy", "Loop", "StackConfig",
           "ConfigError")


def __getattr__(name):
    if name == "Loop":          # importing the loop loads DPDK's libraries: only when asked
        from fastloop.loop.loop import Loop
        return Loop
    raise AttributeError(f"module 'fastloop' has no attribute {name!r}")


def new_event_loop(stack=None):
    """A new fastloop event loop (see Loop for `stack`)."""
    from fastloop.loop.loop import Loop
    return Loop(stack)


class EventLoopPolicy(__asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy, making fastloop loops (deprecated in Python 3.14, like every
    policy: prefer run() or loop_factory=new_event_loop)."""

    def _loop_factory(self):
        return new_event_loop()


def install():
    """Make fastloop the loop asyncio.new_event_loop()/get_event_loop() create."""
    __asyncio.set_event_loop_policy(EventLoopPolicy())


def run(main, *, debug=None, loop_factory=None):
    """Run a coroutine on a new fastloop loop, like asyncio.run()."""
    factory = loop_factory or new_event_loop
    if hasattr(__asyncio, "Runner"):
        with __asyncio.Runner(debug=debug, loop_factory=factory) as runner:
            return runner.run(main)
    loop = factory()                       # Python 3.10: what asyncio.run does
    try:
        __asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            __asyncio.set_event_loop(None)
            loop.close()
