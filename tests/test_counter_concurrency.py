"""Several processes change one BoundedCounter at once with hypothesis-chosen deltas:
every reply lies within the bounds and the final value is the initial value plus the sum
of the deltas the replies report as made."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import uuid
from collections.abc import Iterator

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import BoundedCounter

WORKERS = 4


def apply_deltas(job: tuple[str, str, int | None, int | None, int, list[tuple[int, bool]],
                             float]) -> list[tuple[bool, int, int]]:
    """Worker (spawned process): apply each (delta, clamp), report every reply."""
    import time

    url, name, lo, hi, initial, deltas, start_at = job
    client = redis.Redis.from_url(url)
    counter = BoundedCounter(client, name, min=lo, max=hi, initial=initial)
    counter.get()  # connect before the start line
    time.sleep(max(0.0, start_at - time.time()))
    out = []
    for n, clamp in deltas:
        r = counter.incr(n, clamp=clamp)
        out.append((r.applied, r.value, r.delta))
    client.close()
    return out


@pytest.fixture(scope="module")
def pool() -> Iterator[multiprocessing.pool.Pool]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(WORKERS) as p:
        yield p
        p.terminate()


DELTAS = st.lists(
    st.tuples(st.one_of(st.integers(-5, 5), st.integers(-1000, 1000)), st.booleans()),
    min_size=20, max_size=60)


@settings(max_examples=6)
@given(
    bounds=st.one_of(
        st.tuples(st.just(0), st.integers(0, 40)),
        st.tuples(st.none(), st.integers(0, 40)),
        st.tuples(st.integers(-40, 0), st.none()),
    ),
    per_worker=st.lists(DELTAS, min_size=WORKERS, max_size=WORKERS),
)
def test_processes_never_push_the_counter_out_of_bounds(
        redis_url: str, pool: multiprocessing.pool.Pool,
        bounds: tuple[int | None, int | None], per_worker: list[list[tuple[int, bool]]]) -> None:
    import time

    lo, hi = bounds
    initial = 0
    name = f"race-{uuid.uuid4().hex}"
    start_at = time.time() + 0.3
    results = pool.map(apply_deltas, [(redis_url, name, lo, hi, initial, d, start_at)
                                      for d in per_worker])
    made = 0
    for replies, deltas in zip(results, per_worker, strict=True):
        for (applied, value, delta), (n, clamp) in zip(replies, deltas, strict=True):
            assert lo is None or value >= lo
            assert hi is None or value <= hi
            assert applied == (delta == n)
            assert clamp or delta in (0, n)
            assert abs(delta) <= abs(n)
            made += delta
    with redis.Redis.from_url(redis_url) as client:
        final = BoundedCounter(client, name, min=lo, max=hi, initial=initial).get()
    assert final == initial + made
