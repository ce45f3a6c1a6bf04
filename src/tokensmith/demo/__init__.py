"""``tokensmith demo``: a ready-to-try authorization server with a demo user and clients."""

from tokensmith.demo.seed import DemoData, seed

__all__ = ["DemoData", "seed"]
