"""Server-side key-value state: launch sessions, tokens, discovery caches, pending writes.

Two implementations behind one interface: Redis for every real deployment, and an embedded in-process
store for single-process development when no Redis URL is configured.
"""

from __future__ import annotations

import builtins
import functools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import redis

from .errors import StoreUnavailable

_T = TypeVar("_T")


def _unavailable_on_redis_error(method: Callable[..., _T]) -> Callable[..., _T]:
    """A Redis outage surfaces as StoreUnavailable (503 with a page that says what still works), never a 500."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as error:
            raise StoreUnavailable(f"the session store did not answer ({type(error).__name__})") from None

    return wrapper


class KeyValueStore(Protocol):
    """The operations Tandem needs; values are strings (callers store JSON)."""

    def get(self, key: str) -> str | None: ...

    def set(
        self, key: str, value: str, ttl_seconds: int | None = None, *, only_if_absent: bool = False
    ) -> bool:
        """Store a value; with only_if_absent, store it only when the key is free and say whether it was."""
        ...

    def take(self, key: str) -> str | None:
        """Get and delete atomically: a value taken once cannot be taken again."""
        ...

    def delete(self, key: str) -> None: ...

    def increment(self, key: str, ttl_seconds: int, by: int = 1) -> int:
        """Add `by` to a counter atomically and return the new count (a missing counter starts at 0); each count
        (re)sets the counter's TTL, so the caller makes it live no longer than what it counts."""
        ...

    def add_to_set(self, key: str, member: str) -> None: ...

    def remove_from_set(self, key: str, member: str) -> None: ...

    def set_members(self, key: str) -> builtins.set[str]: ...

    def hash_set(self, key: str, field: str, value: str, ttl_seconds: int | None = None) -> None:
        """Set one field of a hash (other fields are untouched); the TTL applies to the whole hash."""
        ...

    def hash_get(self, key: str, field: str) -> str | None: ...

    def hash_all(self, key: str) -> dict[str, str]: ...

    def hash_get_many(self, key: str, fields: list[str]) -> list[str | None]:
        """The values of these fields, in their order (None where a field is not set): one round trip."""
        ...

    def hash_set_many(self, key: str, values: dict[str, str], ttl_seconds: int | None = None) -> None:
        """Set several fields of a hash at once (other fields are untouched); the TTL applies to the whole hash."""
        ...

    def hash_delete(self, key: str, fields: list[str]) -> None:
        """Remove these fields of a hash (missing ones are no error)."""
        ...

    def ping(self) -> bool: ...


class RedisStore:
    """KeyValueStore on a Redis server."""

    def __init__(self, url: str, *, prefix: str = "tandem:") -> None:
        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
        )

    @_unavailable_on_redis_error
    def get(self, key: str) -> str | None:
        value = self._redis.get(self.prefix + key)
        return None if value is None else str(value)

    @_unavailable_on_redis_error
    def set(
        self, key: str, value: str, ttl_seconds: int | None = None, *, only_if_absent: bool = False
    ) -> bool:
        return bool(self._redis.set(self.prefix + key, value, ex=ttl_seconds, nx=only_if_absent))

    @_unavailable_on_redis_error
    def take(self, key: str) -> str | None:
        value = self._redis.getdel(self.prefix + key)
        return None if value is None else str(value)

    @_unavailable_on_redis_error
    def delete(self, key: str) -> None:
        self._redis.delete(self.prefix + key)

    @_unavailable_on_redis_error
    def increment(self, key: str, ttl_seconds: int, by: int = 1) -> int:
        with self._redis.pipeline() as pipe:  # MULTI/EXEC: the count and its expiry together
            pipe.incrby(self.prefix + key, by)
            pipe.expire(self.prefix + key, ttl_seconds)  # plain EXPIRE: any Redis version
            count, _ = pipe.execute()
        return int(count)

    @_unavailable_on_redis_error
    def add_to_set(self, key: str, member: str) -> None:
        self._redis.sadd(self.prefix + key, member)

    @_unavailable_on_redis_error
    def remove_from_set(self, key: str, member: str) -> None:
        self._redis.srem(self.prefix + key, member)

    @_unavailable_on_redis_error
    def set_members(self, key: str) -> builtins.set[str]:
        return {str(m) for m in self._redis.smembers(self.prefix + key)}

    @_unavailable_on_redis_error
    def hash_set(self, key: str, field: str, value: str, ttl_seconds: int | None = None) -> None:
        with self._redis.pipeline() as pipe:
            pipe.hset(self.prefix + key, field, value)
            if ttl_seconds is not None:
                pipe.expire(self.prefix + key, ttl_seconds)
            pipe.execute()

    @_unavailable_on_redis_error
    def hash_get(self, key: str, field: str) -> str | None:
        value = self._redis.hget(self.prefix + key, field)
        return None if value is None else str(value)

    @_unavailable_on_redis_error
    def hash_all(self, key: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._redis.hgetall(self.prefix + key).items()}

    @_unavailable_on_redis_error
    def hash_get_many(self, key: str, fields: list[str]) -> list[str | None]:
        if not fields:
            return []
        return [None if v is None else str(v) for v in self._redis.hmget(self.prefix + key, fields)]

    @_unavailable_on_redis_error
    def hash_set_many(self, key: str, values: dict[str, str], ttl_seconds: int | None = None) -> None:
        if not values:
            return
        with self._redis.pipeline() as pipe:  # MULTI/EXEC: the fields and the expiry together
            pipe.hset(self.prefix + key, mapping=values)  # type: ignore[arg-type]
            if ttl_seconds is not None:
                pipe.expire(self.prefix + key, ttl_seconds)
            pipe.execute()

    @_unavailable_on_redis_error
    def hash_delete(self, key: str, fields: list[str]) -> None:
        if fields:
            self._redis.hdel(self.prefix + key, *fields)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


class EmbeddedStore:
    """In-process KeyValueStore: one process only, lost on restart. For development."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._sets: dict[str, builtins.set[str]] = {}
        self._hashes: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= time.monotonic():
            del self._data[key]
            return None
        return value

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def set(
        self, key: str, value: str, ttl_seconds: int | None = None, *, only_if_absent: bool = False
    ) -> bool:
        with self._lock:
            if only_if_absent and self._live(key) is not None:
                return False
            expires_at = None if ttl_seconds is None else time.monotonic() + ttl_seconds
            self._data[key] = (value, expires_at)
            return True

    def take(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key)
            self._data.pop(key, None)
            return value

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)
            self._sets.pop(key, None)
            self._hashes.pop(key, None)

    def increment(self, key: str, ttl_seconds: int, by: int = 1) -> int:
        with self._lock:
            live = self._live(key)
            count = (int(live) if live is not None else 0) + by
            self._data[key] = (str(count), time.monotonic() + ttl_seconds)
            return count

    def add_to_set(self, key: str, member: str) -> None:
        with self._lock:
            self._sets.setdefault(key, set()).add(member)

    def remove_from_set(self, key: str, member: str) -> None:
        with self._lock:
            self._sets.get(key, set()).discard(member)

    def set_members(self, key: str) -> builtins.set[str]:
        with self._lock:
            return set(self._sets.get(key, set()))

    def hash_set(self, key: str, field: str, value: str, ttl_seconds: int | None = None) -> None:
        # In-process development store: hashes do not expire (the process's life bounds them).
        with self._lock:
            self._hashes.setdefault(key, {})[field] = value

    def hash_get(self, key: str, field: str) -> str | None:
        with self._lock:
            return self._hashes.get(key, {}).get(field)

    def hash_all(self, key: str) -> dict[str, str]:
        with self._lock:
            return dict(self._hashes.get(key, {}))

    def hash_get_many(self, key: str, fields: list[str]) -> list[str | None]:
        with self._lock:
            table = self._hashes.get(key, {})
            return [table.get(f) for f in fields]

    def hash_set_many(self, key: str, values: dict[str, str], ttl_seconds: int | None = None) -> None:
        with self._lock:
            self._hashes.setdefault(key, {}).update(values)

    def hash_delete(self, key: str, fields: list[str]) -> None:
        with self._lock:
            table = self._hashes.get(key, {})
            for f in fields:
                table.pop(f, None)

    def ping(self) -> bool:
        return True
