"""streamtune: fusion analysis and parallelism tuning for streaming dataflow jobs."""
__version__ = "0.1.0"
