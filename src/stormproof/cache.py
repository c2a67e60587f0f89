"""The pieces of ``Cache`` for stores and drivers of your own: the store protocol, the
in-memory store, cache entries, serializers for shared stores, and ``copy_error``, the
copy of a cached or shared error that each caller receives."""

from ._cache import CacheEntry, CacheStore, JSONSerializer, MemoryStore, Serializer
from ._core.errors import fresh_copy as copy_error

__all__ = ["CacheEntry", "CacheStore", "JSONSerializer", "MemoryStore", "Serializer", "copy_error"]
