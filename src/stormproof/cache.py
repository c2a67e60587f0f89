"""The pieces of ``Cache`` for stores of your own: the store protocol, the in-memory
store, cache entries, and serializers for shared stores."""

from ._cache import CacheEntry, CacheStore, JSONSerializer, MemoryStore, Serializer

__all__ = ["CacheEntry", "CacheStore", "JSONSerializer", "MemoryStore", "Serializer"]
