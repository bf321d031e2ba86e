"""planner: put a compose stack's images into every daemon that needs them, doing only necessary work."""

__version__ = "0.1.0"
