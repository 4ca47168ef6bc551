"""Read and write patterns: cache-aside (``aside``) and write-through (``write``)."""

from runtime.cache.patterns.aside import CacheAside, Loader
from runtime.cache.patterns.write import Writer, WriteThrough

__all__ = ["CacheAside", "Loader", "WriteThrough", "Writer"]
