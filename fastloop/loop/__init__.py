"""The event loop (fastloop/loop/loop.pyx) and its routing rule (routing.py)."""
