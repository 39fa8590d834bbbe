"""The key-value store: the embedded store and a real redis-server behave the same."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from launch.store import EmbeddedStore, KeyValueStore, RedisStore


@pytest.fixture(params=["redis", "embedded"])
def store(request: pytest.FixtureRequest) -> Iterator[KeyValueStore]:
    if request.param == "redis":
        yield request.getfixturevalue("redis_store")
    else:
        yield EmbeddedStore()


def test_set_get_delete(store: KeyValueStore) -> None:
    assert store.get("a") is None
    assert store.set("a", "1")
    assert store.get("a") == "1"
    store.delete("a")
    assert store.get("a") is None


def test_take_is_usable_once(store: KeyValueStore) -> None:
    store.set("state", "x", 60)
    assert store.take("state") == "x"
    assert store.take("state") is None


def test_only_if_absent(store: KeyValueStore) -> None:
    assert store.set("lock", "1", 60, only_if_absent=True)
    assert not store.set("lock", "2", 60, only_if_absent=True)
    assert store.get("lock") == "1"


def test_values_expire(store: KeyValueStore) -> None:
    store.set("short", "x", 1)
    assert store.get("short") == "x"
    time.sleep(1.1)
    assert store.get("short") is None
    assert store.set("short", "y", 1, only_if_absent=True)


def test_ping(store: KeyValueStore) -> None:
    assert store.ping()


def test_unreachable_redis_does_not_ping() -> None:
    assert not RedisStore("redis://127.0.0.1:1/0").ping()


def test_redis_store_uses_a_prefix(redis_store: RedisStore) -> None:
    redis_store.set("k", "v")
    assert redis_store._redis.get("tandem:k") == "v"


def test_sets(store: KeyValueStore) -> None:
    store.add_to_set("pending", "a")
    store.add_to_set("pending", "b")
    store.add_to_set("pending", "a")
    assert store.set_members("pending") == {"a", "b"}
    store.remove_from_set("pending", "a")
    assert store.set_members("pending") == {"b"}
    assert store.set_members("empty") == set()


def test_hashes_set_one_field_at_a_time(store: KeyValueStore) -> None:
    store.hash_set("scores", "p1", "a", 60)
    store.hash_set("scores", "p2", "b", 60)
    store.hash_set("scores", "p1", "c", 60)  # two writers of different fields never overwrite each other
    assert store.hash_all("scores") == {"p1": "c", "p2": "b"}
    assert store.hash_all("nothing") == {}
    assert store.hash_get("scores", "p2") == "b" and store.hash_get("scores", "p9") is None
    store.delete("scores")
    assert store.hash_all("scores") == {}


def test_hashes_read_write_and_delete_many_fields_at_once(store: KeyValueStore) -> None:
    # Issue 27 §2: the worklist's ready rows read only the rows a page shows (HMGET) and patch only those a
    # write touched (HSET with a mapping, HDEL).
    store.hash_set_many("rows", {"a": "1", "b": "2", "c": "3"}, 60)
    store.hash_set_many("rows", {"b": "20"}, 60)  # other fields are untouched
    store.hash_set_many("rows", {}, 60)
    assert store.hash_get_many("rows", ["c", "x", "b"]) == ["3", None, "20"]
    assert store.hash_get_many("rows", []) == [] and store.hash_get_many("none", ["a"]) == [None]
    store.hash_delete("rows", ["a", "x"])
    store.hash_delete("rows", [])
    assert store.hash_all("rows") == {"b": "20", "c": "3"}


def test_an_unreachable_redis_raises_store_unavailable_on_every_operation() -> None:
    from launch.errors import StoreUnavailable

    down = RedisStore("redis://127.0.0.1:1/0")
    for operation in (lambda: down.get("k"), lambda: down.set("k", "v"), lambda: down.hash_set("h", "f", "v"),
                      lambda: down.hash_all("h"), lambda: down.hash_get_many("h", ["f"]),
                      lambda: down.hash_set_many("h", {"f": "v"}), lambda: down.hash_delete("h", ["f"])):  # fmt: skip
        with pytest.raises(StoreUnavailable):
            operation()


def test_increment_is_atomic_and_expires(store: KeyValueStore) -> None:
    # Issue 26 §4: counters read and rewritten without a lock lost counts under concurrency; increment is one
    # atomic step on both stores (Redis INCRBY in MULTI/EXEC, a lock in the embedded store).
    import threading

    barrier = threading.Barrier(40)

    def count() -> None:
        barrier.wait()
        store.increment("tries", 60)

    threads = [threading.Thread(target=count) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("tries") == "40"
    assert store.increment("tries", 60, by=-1) == 39
    assert store.increment("short", 1) == 1
    time.sleep(1.2)
    assert store.get("short") is None and store.increment("short", 1) == 1  # expired: counts again from 0
