"""Read and write patterns: cache-aside (``aside``) and write-through (``write``)."""

__all__: list[str] = []
