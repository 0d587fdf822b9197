from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingestion.lib.ratelimit import RedisRateLimiter
from kbmanager.queues import get_redis

ROOT = Path(__file__).resolve().parents[3]

# A separate interpreter that acquires ``count`` slots and prints when it got each one.
# It waits for a shared start instant so both processes really compete for the same slots.
ACQUIRE_LOOP = """
import json, sys, time
from redis import Redis
from ingestion.lib.ratelimit import RedisRateLimiter

url, key, rate, burst, count, start_at = sys.argv[1:7]
limiter = RedisRateLimiter(Redis.from_url(url), key, float(rate), int(burst))
time.sleep(max(0.0, float(start_at) - time.time()))
stamps = []
for _ in range(int(count)):
    limiter.acquire(timeout=30)
    stamps.append(time.time())
print(json.dumps(stamps))
"""


def redis_url() -> str:
    kwargs = get_redis().connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def acquire_in_processes(*, processes: int, count: int, rate: float, burst: int) -> list[float]:
    start_at = time.time() + 1.0  # enough for both interpreters to import and connect
    args = [redis_url(), "test:limiter", str(rate), str(burst), str(count), str(start_at)]
    children = [
        subprocess.Popen([sys.executable, "-c", ACQUIRE_LOOP, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    stamps: list[float] = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        stamps += json.loads(out)
    return sorted(stamps)


def most_in_any_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if start <= t < start + window) for start in stamps)


def test_two_processes_together_never_exceed_the_rate():
    stamps = acquire_in_processes(processes=2, count=15, rate=20, burst=1)

    assert len(stamps) == 30
    # 20 per second gives at most 5 slots in a 0.25 s window. A process holds one booked slot at a time, so each
    # process can add at most one stamp from an earlier slot it overslept: 2 extra. Unlimited, all 30 land at once.
    assert most_in_any_window(stamps, 0.25) <= 5 + 2
    assert most_in_any_window(stamps, 1.0) <= 20 + 2


def test_burst_lets_the_first_requests_through_together_then_enforces_the_rate():
    stamps = acquire_in_processes(processes=2, count=6, rate=10, burst=4)

    assert len(stamps) == 12
    # The four burst slots go at once, then one slot per 0.1 s: 4 + 4 slots in a 0.5 s window, +2 for oversleeping.
    assert most_in_any_window(stamps, 0.5) <= 8 + 2
    # Without the burst, the rate alone would allow at most 1 (+2) requests within 0.09 s.
    assert most_in_any_window(stamps, 0.09) >= 4


def test_without_waiting_the_first_acquire_returns_immediately_and_the_next_waits():
    limiter = RedisRateLimiter(get_redis(), "test:limiter", rate_per_second=2)
    assert limiter.acquire() == 0
    assert limiter.acquire() > 0  # the slot after the first is half a second later


def test_acquire_gives_up_without_booking_when_the_slot_is_beyond_the_timeout():
    limiter = RedisRateLimiter(get_redis(), "test:limiter", rate_per_second=0.1)
    limiter.acquire()
    with pytest.raises(TimeoutError):
        limiter.acquire(timeout=1)
    with pytest.raises(TimeoutError):
        limiter.acquire(timeout=1)  # the failed attempt did not push the next slot further away
    tat = int(get_redis().get("test:limiter"))
    seconds, micros = get_redis().time()
    assert tat - (seconds * 1_000_000 + micros) <= 10_000_000


def test_pause_pushes_the_next_slot_for_every_limiter_on_the_key():
    first = RedisRateLimiter(get_redis(), "test:limiter", rate_per_second=100)
    second = RedisRateLimiter(get_redis(), "test:limiter", rate_per_second=100)
    first.pause(30)
    with pytest.raises(TimeoutError):
        second.acquire(timeout=5)
    first.pause(1)  # a shorter pause never shortens a longer one
    with pytest.raises(TimeoutError):
        second.acquire(timeout=5)


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError):
        RedisRateLimiter(get_redis(), "test:limiter", rate_per_second=0)
    with pytest.raises(ValueError):
        RedisRateLimiter(get_redis(), "test:limiter", rate_per_second=1, burst=0)
