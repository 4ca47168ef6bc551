"""Read and write patterns: cache-aside (``aside``) and write-through (``write``)."""
