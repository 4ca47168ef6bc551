"""The trading runtime: shared domain types (``runtime.domain``), the source of
truth (``runtime.data``) and its Redis caching layer (``runtime.cache``)."""

__all__: list[str] = []
