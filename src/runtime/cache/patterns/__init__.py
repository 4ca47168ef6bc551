"""Read and write patterns: cache-aside (``aside``) and write-through (``write``)."""

from runtime.cache.patterns.aside import CacheAside, Loader
from runtime.cache.patterns.write import WriteThrough, Writer

__all__ = ["CacheAside", "Loader", "WriteThrough", "Writer"]
