"""The pieces of ``Cache`` for stores and drivers of your own: the store protocols, the
in-memory store, the Redis store (extra ``redis``) a fleet of processes shares, cache
entries, serializers for shared stores, and ``copy_error``, the copy of a cached or
shared error that each caller receives."""

from ._cache import (
    CacheEntry,
    CacheStore,
    JSONSerializer,
    MemoryStore,
    Serializer,
    SharedCacheStore,
)
from ._core.errors import fresh_copy as copy_error
from ._redis_cache import RedisCacheStore

__all__ = [
    "CacheEntry",
    "CacheStore",
    "JSONSerializer",
    "MemoryStore",
    "RedisCacheStore",
    "Serializer",
    "SharedCacheStore",
    "copy_error",
]
