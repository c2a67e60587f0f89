"""FleetBudget: one token bucket for a whole fleet of processes, kept by a backend.

Each process leases a batch of tokens (``lease`` retries' worth) from the fleet's
bucket and spends them locally: a retry never waits for the network. Rewards for
successes are counted locally and go to the fleet's bucket at the next exchange,
which also tops the lease up. During a total outage the fleet makes at most
``capacity / retry_cost`` retries, however many processes it has, plus at worst one
lease per process counted out while it held tokens (silent for ``lease_ttl``, a
bucket made afresh, a start while the backend was unreachable): N x lease.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from ._budget import TokenBucketOptions, _Budget, _in_units
from ._classify import THROTTLING, TIMEOUT, ErrorClass
from ._core.options import Configured, Options
from ._core.validate import check_int, check_number
from ._fleet import Args, FleetBackend, MemoryStore, Script, check_backend, check_key_part

__all__ = ["BUDGET_SCRIPT", "FleetBudget", "FleetBudgetOptions"]


# -- the exchange ---------------------------------------------------------------------

_LUA = """
-- KEYS[1] the fleet's bucket, a hash: tokens (not leased), unit, leased (held by
--   processes), updated_ms
-- KEYS[2] a hash: process id -> tokens it holds; KEYS[3] a sorted set: process id ->
--   its last exchange (ms, server time)
-- ARGV: capacity, unit, reward, want, held (in units: 1/unit of a token), lease_ttl
--   (ms), step (a retry's cost: grants are whole steps), the process id, the keys'
--   ttl (ms)
local capacity = tonumber(ARGV[1])
local unit = tonumber(ARGV[2])
local reward = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local held = tonumber(ARGV[5])
local lease_ttl = tonumber(ARGV[6])
local step = tonumber(ARGV[7])
local id = ARGV[8]
local ttl = tonumber(ARGV[9])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'unit', 'leased')
local tokens = tonumber(stored[1])
local leased = tonumber(stored[3]) or 0
if tokens == nil or tonumber(stored[2]) ~= unit then
  -- a new bucket, full; or other costs: rescaled, and leases counted afresh
  if tokens == nil then
    tokens = capacity
  else
    tokens = math.floor(tokens * unit / tonumber(stored[2]))
  end
  leased = 0
  redis.call('DEL', KEYS[2], KEYS[3])
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms - lease_ttl)
for _, other in ipairs(gone) do
  leased = leased - (tonumber(redis.call('HGET', KEYS[2], other)) or 0)
  redis.call('HDEL', KEYS[2], other)
  redis.call('ZREM', KEYS[3], other)
end
leased = math.max(0, leased - (tonumber(redis.call('HGET', KEYS[2], id)) or 0)) + held
tokens = math.max(0, math.min(capacity - leased, tokens + reward))
local granted = math.min(want, tokens)
if granted < want then
  -- the fleet runs short: whole retries only (a part of one would buy nothing, and
  -- is of use to the fleet, where rewards can make it whole)
  granted = granted - granted % step
end
tokens = tokens - granted
held = held + granted
leased = leased + granted
if held > 0 then
  redis.call('HSET', KEYS[2], id, held)
  redis.call('ZADD', KEYS[3], now_ms, id)
else
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'unit', unit, 'leased', leased,
  'updated_ms', now_ms)
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return {granted, tokens, leased}
"""


def _exchange(store: MemoryStore, keys: Sequence[str], args: Args, now_ms: int) -> list[int]:
    """The Lua script above, in Python, for ``MemoryBackend``."""
    capacity, unit, reward, want, held, lease_ttl, step = (int(arg) for arg in args[:7])
    key = str(args[7])
    ttl = int(args[8])
    stored = store.get(keys[0], now_ms)
    holders = store.get(keys[1], now_ms) or {}
    seen = store.get(keys[2], now_ms) or {}
    if stored is None or stored["unit"] != unit:
        tokens = capacity if stored is None else stored["tokens"] * unit // stored["unit"]
        leased = 0
        holders, seen = {}, {}
    else:
        tokens, leased = stored["tokens"], stored["leased"]
    for other in [other for other, last in seen.items() if last <= now_ms - lease_ttl]:
        leased -= holders.pop(other, 0)
        del seen[other]
    leased = max(0, leased - holders.get(key, 0)) + held
    tokens = max(0, min(capacity - leased, tokens + reward))
    granted = min(want, tokens)
    if granted < want:  # the fleet runs short: whole retries only (see the script)
        granted -= granted % step
    tokens -= granted
    held += granted
    leased += granted
    if held > 0:
        holders[key] = held
        seen[key] = now_ms
    else:
        holders.pop(key, None)
        seen.pop(key, None)
    bucket = {"tokens": tokens, "unit": unit, "leased": leased, "updated_ms": now_ms}
    for name, fields in zip(keys, (bucket, holders, seen), strict=True):
        store.put(name, fields, now_ms, ttl)
    return [granted, tokens, leased]


BUDGET_SCRIPT = Script(
    name="budget", suffixes=("bucket", "leases", "seen"), lua=_LUA, local=_exchange
)
"""A budget's exchange. The fleet's bucket is made full from the caller's
configuration if it does not exist. The caller says what it holds now (processes
silent for ``lease_ttl`` no longer count); its reward goes into the bucket, which
never holds more than ``capacity`` minus what processes hold; then up to ``want``
is granted from it. The reply is ``[granted, tokens left, tokens held by the
fleet's processes]``."""


# -- options ------------------------------------------------------------------------------


_TB = TokenBucketOptions()


@dataclass(frozen=True)
class FleetBudgetOptions(Options):
    """FleetBudget's options, validated when built; ``replace()`` copies."""

    backend: FleetBackend
    name: str
    capacity: float = _TB.capacity
    retry_cost: float = _TB.retry_cost
    timeout_cost: float = _TB.timeout_cost
    throttling_cost: float | None = _TB.throttling_cost
    success_reward: float = _TB.success_reward
    refund: bool = _TB.refund
    lease: int = 10
    flush_interval: float = 1.0
    lease_ttl: float = 60.0

    def _check(self) -> None:
        check_backend(self.backend)
        self._set("name", check_key_part("name", self.name, ""))
        bucket = TokenBucketOptions(
            capacity=self.capacity,
            retry_cost=self.retry_cost,
            timeout_cost=self.timeout_cost,
            throttling_cost=self.throttling_cost,
            success_reward=self.success_reward,
            refund=self.refund,
            name=self.name,
        )
        for field in ("capacity", "retry_cost", "timeout_cost", "throttling_cost"):
            self._set(field, getattr(bucket, field))
        self._set("success_reward", bucket.success_reward)
        self._set("lease", check_int("lease", self.lease, low=1, high=1_000_000))
        self._set(
            "flush_interval",
            check_number("flush_interval", self.flush_interval, low=0.01, high=3600.0),
        )
        self._set(
            "lease_ttl",
            check_number("lease_ttl", self.lease_ttl, low=2 * self.flush_interval, high=1e9),
        )


# -- the budget -----------------------------------------------------------------------


class FleetBudget(_Budget, Configured[FleetBudgetOptions]):
    """``TokenBucketBudget``'s quota shared by every process of a fleet.

    The fleet's bucket (``capacity`` tokens, the same costs and rewards as
    ``TokenBucketBudget``) lives in the backend. Each process holds a lease of up to
    ``lease`` retries' worth of tokens (at ``retry_cost``; at least one retry of
    any class) taken from it, and spends
    it locally; successes earn ``success_reward`` locally, handed to the fleet at the
    next exchange. A retry is refused when the lease cannot pay for it: the flusher
    tops the lease up, at most once per ``flush_interval`` seconds, at once after a
    quiet period. While the fleet's bucket and this lease were full at the last
    exchange, a success changes nothing and nothing is sent.

    While the backend is unreachable, the lease is a local bucket of the same size
    (a process that never reached the backend starts with it full), refilled by this
    process's own rewards.
    """

    options_type = FleetBudgetOptions

    __slots__ = (
        "_backend",
        "_capacity",
        "_costs",
        "_degraded",
        "_fleet",
        "_fleet_held",
        "_fleet_interval",
        "_fleet_last",
        "_fleet_news",
        "_id",
        "_lease_ttl_ms",
        "_lease_units",
        "_local",
        "_pending",
        "_quiet",
        "_refund_last",
        "_reward",
        "_synced",
        "_transient",
        "_unit",
    )

    def __init__(
        self,
        backend: FleetBackend,
        *,
        name: str,
        capacity: float = _TB.capacity,
        retry_cost: float = _TB.retry_cost,
        timeout_cost: float = _TB.timeout_cost,
        throttling_cost: float | None = _TB.throttling_cost,
        success_reward: float = _TB.success_reward,
        refund: bool = _TB.refund,
        lease: int = 10,
        flush_interval: float = 1.0,
        lease_ttl: float = 60.0,
    ) -> None:
        self._configure(
            FleetBudgetOptions(
                backend=backend,
                name=name,
                capacity=capacity,
                retry_cost=retry_cost,
                timeout_cost=timeout_cost,
                throttling_cost=throttling_cost,
                success_reward=success_reward,
                refund=refund,
                lease=lease,
                flush_interval=flush_interval,
                lease_ttl=lease_ttl,
            )
        )

    def _configure(self, options: FleetBudgetOptions) -> None:
        """Count in units of the options; an empty lease, to be taken at once."""
        self._options = options
        self._start(options.name)
        self._backend = options.backend
        self._refund_last = options.refund
        units, self._unit = _in_units(
            {
                "capacity": options.capacity,
                "transient": options.retry_cost,
                TIMEOUT: options.timeout_cost,
                THROTTLING: (
                    options.retry_cost
                    if options.throttling_cost is None
                    else options.throttling_cost
                ),
                "reward": options.success_reward,
            }
        )
        self._capacity = units["capacity"]
        self._costs = {key: units[key] for key in ("transient", TIMEOUT, THROTTLING)}
        self._transient = self._costs["transient"]
        self._reward = units["reward"]
        # ``lease`` retries at the transient cost, and never less than any one retry.
        self._lease_units = max(options.lease * self._transient, *self._costs.values())
        self._local = 0  # tokens leased and not spent
        self._pending = 0  # tokens earned for the fleet, not yet sent
        self._fleet = 0  # the fleet's bucket at the last exchange
        self._fleet_held = 0  # what the fleet's processes held then
        self._id = uuid.uuid4().hex  # this budget in this process, for the fleet
        self._lease_ttl_ms = round(1000 * options.lease_ttl)
        self._synced = False  # has an exchange ever succeeded?
        self._degraded = False
        self._quiet = False  # fleet and lease full at the last exchange: nothing to count
        self._fleet_news = True  # something to send (the first lease)
        self._fleet_last = -float("inf")
        self._fleet_interval = options.flush_interval
        self._backend._register(self)

    # -- the hot path: local state only

    def try_retry(self, error_class: ErrorClass) -> object | None:
        cost = self._costs.get(error_class, self._transient)
        with self._lock:
            granted = self._local >= cost
            if granted:
                self._local -= cost
            self._quiet = False
            quiet_before = not self._fleet_news
            self._fleet_news = True
        if quiet_before:
            self._backend._nudge()
        return cost if granted else None

    def cancel_retry(self, receipt: object) -> None:
        self._refund(receipt)

    def on_success(self, receipt: object | None) -> None:
        if receipt is None or not self._refund_last:
            if self._quiet or not self._reward:
                return  # the fleet's bucket was full: a reward would change nothing
            with self._lock:
                if self._degraded:
                    self._local = min(self._lease_units, self._local + self._reward)
                else:
                    self._pending = min(self._capacity, self._pending + self._reward)
                quiet_before = not self._fleet_news
                self._fleet_news = True
            if quiet_before:
                self._backend._nudge()
        else:
            self._refund(receipt)

    def _refund(self, receipt: object) -> None:
        """A retry's cost comes back to the lease (what overflows it, to the fleet)."""
        if type(receipt) is int and receipt:
            with self._lock:
                local = self._local + receipt
                if local > self._lease_units:
                    if not self._degraded:
                        self._pending = min(
                            self._capacity, self._pending + local - self._lease_units
                        )
                        self._fleet_news = True
                    local = self._lease_units
                self._local = local

    # -- what the backend asks (see _fleet.FleetPolicy)

    def _fleet_script(self) -> Script:
        return BUDGET_SCRIPT

    def _fleet_request(self, closing: bool) -> Args | None:
        """``[capacity, unit, reward, want, held, lease_ttl_ms, step, id]``: rewards out,
        what this process holds, a top-up of the lease in (closing: the whole lease
        goes back, nothing comes in)."""
        with self._lock:
            if closing:
                reward = self._pending + self._local
                if not reward:
                    return None
                self._local = 0
                want = 0
            elif self._fleet_news:
                reward = self._pending
                want = self._lease_units - self._local
            else:
                return None
            self._pending = 0
            held = self._local
        return [
            self._capacity,
            self._unit,
            reward,
            want,
            held,
            self._lease_ttl_ms,
            self._transient,
            self._id,
        ]

    def _fleet_reply(self, request: Args, reply: list[int]) -> None:
        granted, fleet, held = reply
        with self._lock:
            local = self._local + granted
            if local > self._lease_units:  # refunds came in meanwhile
                self._pending = min(self._capacity, self._pending + local - self._lease_units)
                local = self._lease_units
            self._local = local
            self._fleet = fleet
            self._fleet_held = held
            self._synced = True
            full = local >= self._lease_units
            self._quiet = fleet + held >= self._capacity and full and not self._pending
            self._fleet_news = not full or self._pending > 0

    def _fleet_lost(self, request: Args) -> None:
        """The exchange failed; it may still have been applied (a paused server runs
        it when it wakes up), so its reward is not sent again: the fleet errs towards
        fewer tokens, never more."""
        with self._lock:
            self._fleet_news = True
            self._quiet = False

    def _fleet_degraded(self, degraded: bool) -> None:
        with self._lock:
            self._degraded = degraded
            self._quiet = False
            self._fleet_news = True  # resync when the backend is back
            if degraded:
                if not self._synced:  # never reached the fleet: a full local bucket
                    self._local = self._lease_units
                self._local = min(self._lease_units, self._local + self._pending)
                self._pending = 0

    def _fleet_forked(self) -> None:
        self._lock = threading.Lock()
        self._id = uuid.uuid4().hex
        self._local = 0
        self._pending = 0
        self._quiet = False
        self._fleet_news = True
        self._fleet_last = -float("inf")

    # -- reading it

    @property
    def backend(self) -> FleetBackend:
        return self._backend

    @property
    def capacity(self) -> float:
        return self._capacity / self._unit

    @property
    def leased(self) -> float:
        """Tokens this process holds and may spend without asking the fleet."""
        return self._local / self._unit

    @property
    def fleet_available(self) -> float:
        """The fleet's bucket at the last exchange (0 before the first one)."""
        return self._fleet / self._unit

    @property
    def available(self) -> float:
        """Tokens this process could spend as far as it knows: its lease plus the
        fleet's bucket at the last exchange (its lease alone while degraded)."""
        fleet = 0 if self._degraded else self._fleet
        return (self._local + fleet) / self._unit

    def cost(self, error_class: ErrorClass) -> float:
        return self._costs.get(error_class, self._transient) / self._unit

    def close(self) -> None:
        """Give the lease back to the fleet (one exchange) and stop being flushed."""
        self._backend._unregister(self)

    def __repr__(self) -> str:
        costs = self._costs
        unit = self._unit
        return (
            f"FleetBudget({self._backend!r}, name={self._name!r}, "
            f"capacity={self._capacity / unit:g}, retry_cost={costs['transient'] / unit:g}, "
            f"timeout_cost={costs[TIMEOUT] / unit:g}, "
            f"throttling_cost={costs[THROTTLING] / unit:g}, "
            f"success_reward={self._reward / unit:g}, refund={self._refund_last}, "
            f"lease={self._options.lease}; leased={self._local / unit:g}, "
            f"fleet={self._fleet / unit:g})"
        )
