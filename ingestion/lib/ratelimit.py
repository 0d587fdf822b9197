"""A request-rate limiter shared through Redis by every process on every host.

Notion allows about three requests per second per integration, no matter how
many workers send them, so the limit must live in one place all workers see.
The limiter reserves "slots" with a generic cell rate algorithm (GCRA): one Lua
script reads Redis ``TIME`` (a single clock for all hosts), books the earliest
free slot and moves the shared "theoretical arrival time" on by one emission
interval. Because the script runs atomically, N workers together never get more
than ``burst`` requests at once plus one per interval afterwards.
"""

from __future__ import annotations

import time

from redis import Redis

# KEYS[1]: the theoretical arrival time (TAT) of the next request, in microseconds.
# KEYS[2]: the instant until which everybody is paused after a 429, in microseconds.
# ARGV[1]: emission interval in microseconds; ARGV[2]: burst; ARGV[3]: longest wait
# the caller accepts, in microseconds.
# Returns {wait_us, reserved}: reserved is 0 when the wait would exceed the caller's
# limit, in which case nothing is booked, so a caller that gives up costs nobody a slot.
_ACQUIRE_SCRIPT = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local slot = tat - (burst - 1) * interval
if slot < now then slot = now end
local paused_until = tonumber(redis.call('GET', KEYS[2]) or 0)
if slot < paused_until then
  slot = paused_until
  if tat < paused_until then tat = paused_until end
end
local wait = slot - now
if wait > max_wait then
  return {wait, 0}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {wait, 1}
"""

# KEYS[2] as above; ARGV[1]: pause length in microseconds. Never shortens a longer pause.
_PAUSE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local until_us = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if until_us > current then
  redis.call('SET', KEYS[1], string.format('%d', until_us), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 1
"""


class RedisRateLimiter:
    """At most ``rate_per_second`` acquisitions per second (after an initial ``burst``) across all processes."""

    def __init__(self, redis: Redis, key: str, rate_per_second: float, burst: int = 1) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.redis = redis
        self.key = key
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._interval_us = max(1, round(1_000_000 / rate_per_second))
        self._pause_key = f"{key}:paused_until"
        self._acquire = redis.register_script(_ACQUIRE_SCRIPT)
        self._pause = redis.register_script(_PAUSE_SCRIPT)

    def acquire(self, timeout: float = 60.0) -> float:
        """Book the next free slot and sleep until it; return the seconds waited.

        Raises ``TimeoutError`` without booking anything when the free slot is
        more than ``timeout`` seconds away. A booked slot is kept even if a
        pause arrives later: requests already promised a slot still go out.
        """
        wait_us, reserved = self._acquire(
            keys=[self.key, self._pause_key],
            args=[self._interval_us, self.burst, max(0, round(timeout * 1_000_000))],
        )
        wait = int(wait_us) / 1_000_000
        if not int(reserved):
            raise TimeoutError(f"rate limiter {self.key!r}: next free slot is {wait:.2f} s away (timeout {timeout} s)")
        if wait > 0:
            time.sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Push the next free slot at least ``seconds`` into the future for every process (after a 429)."""
        if seconds <= 0:
            return
        self._pause(keys=[self._pause_key], args=[round(seconds * 1_000_000)])
