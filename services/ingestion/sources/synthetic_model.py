"""The seeded price process behind the synthetic market: options, random streams, minute path.

Model (log prices, trading time only):

- Each session i contributes an overnight gap, an intraday diffusion total and Merton jumps.
  The diffusion is GBM: mean (mu - sigma^2/2 - lambda*k)/S per regular session, variance
  sigma^2/S, with S sessions per year; 20% of that variance falls in the overnight gap on
  exchange calendars (none on `24x7`). Jumps: Poisson(`jumps_per_day`) per regular session,
  sizes normal in log space with sd `JUMP_LOG_SD`, mean 0; k = E[e^J - 1] compensates the
  drift so `annual_drift` stays the expected arithmetic return. Early closes scale all of
  it by their share of a regular session.
- Within a session the minute increments are a Brownian bridge to the session's diffusion
  total, with variance following the U-shaped intraday curve; jumps land on random minutes.

Determinism without replaying history: the session-level draws come in fixed blocks of
`SESSION_BLOCK` sessions, each block seeded by (seed, symbol, block); the minute path of a
session is seeded by (seed, symbol, session day). The price at any minute is therefore a
pure function of (options, symbol, minute), whatever window or symbol set is asked for,
and `start_price` is the close just before the first session of `ANCHOR_DAY`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from financelake.services import errors
from financelake.services.ingestion.records import Float64s, Int64s
from financelake.services.ingestion.sources.trading_calendar import (
    TradingCalendar,
    trading_calendar,
)

ANCHOR_DAY = np.datetime64("2020-01-01", "D")
"""`start_price` is the price just before the first session on or after this day."""
SESSION_BLOCK = 256
"""Sessions per seeded block of session-level draws."""
OVERNIGHT_VARIANCE_SHARE = 0.2
"""Share of a session's diffusion variance that falls in the gap before its open."""
JUMP_LOG_SD = 0.02
"""Standard deviation of one jump in log price (about 2%)."""
EXCURSION = 0.4
"""Mean of how far a minute's high/low reach beyond open/close, in minute sds."""
SMILE_OPEN, SMILE_CLOSE, SMILE_DECAY = 3.0, 2.0, 0.06
"""U-shaped intraday curve: extra weight at the open and close, decaying over ~6% of a session."""
VOLATILITY_SMILE_POWER = 0.5
"""Intraday variance follows the volume curve, damped (volatility smiles less than volume)."""
SIZE_SMILE_POWER = 0.3
"""Trade sizes grow with the volume curve, damped (most of the smile is in arrivals)."""

# Stream tags: distinct purposes never share a random stream.
_TAG_SESSIONS, _TAG_MINUTES, _TAG_TRADES = 1, 2, 3


@dataclass(frozen=True)
class SyntheticOptions:
    """How the synthetic market behaves; equal options and symbol give equal data.

    Construct directly for exact values (zero drift and zero jumps are meaningful); use
    `with_defaults` at the API edge, where an unset proto3 field arrives as zero.
    """

    seed: int = 0
    """Any integer; taken modulo 2**64."""
    start_price: float = 100.0
    """Price just before the first session of 2020 (see `ANCHOR_DAY`)."""
    annual_drift: float = 0.05
    """Expected arithmetic return per year, jumps included."""
    annual_volatility: float = 0.25
    """Close-to-close diffusion volatility per year (jumps add to it)."""
    jumps_per_day: float = 0.1
    """Mean number of jumps per regular session; sizes are N(0, JUMP_LOG_SD) in log price."""
    calendar: str = "XNYS"
    """`24x7` (every minute, one session per UTC day) or an exchange_calendars code."""
    trades_per_minute: float = 60.0
    """Mean trade arrivals per trading minute across a session (the smile redistributes)."""

    def __post_init__(self) -> None:
        problems = [
            errors.FieldViolation(name, rule)
            for name, bad, rule in (
                ("start_price", not self.start_price > 0, "must be > 0"),
                ("annual_volatility", not self.annual_volatility >= 0, "must be >= 0"),
                ("annual_drift", not math.isfinite(self.annual_drift), "must be finite"),
                ("jumps_per_day", not self.jumps_per_day >= 0, "must be >= 0"),
                ("trades_per_minute", not self.trades_per_minute >= 0, "must be >= 0"),
            )
            if bad
        ]
        if problems:
            raise errors.InvalidInput("invalid synthetic market options", violations=problems)

    @classmethod
    def with_defaults(
        cls,
        *,
        seed: int = 0,
        start_price: float = 0.0,
        annual_drift: float = 0.0,
        annual_volatility: float = 0.0,
        jumps_per_day: float = 0.0,
        calendar: str = "",
        trades_per_minute: float = 0.0,
    ) -> SyntheticOptions:
        """Options from API values, where zero or empty means "the default" (seed excepted)."""
        defaults = cls()
        return cls(
            seed=seed,
            start_price=start_price or defaults.start_price,
            annual_drift=annual_drift or defaults.annual_drift,
            annual_volatility=annual_volatility or defaults.annual_volatility,
            jumps_per_day=jumps_per_day or defaults.jumps_per_day,
            calendar=calendar or defaults.calendar,
            trades_per_minute=trades_per_minute or defaults.trades_per_minute,
        )


def stream(options: SyntheticOptions, symbol: str, tag: int, *keys: int) -> np.random.Generator:
    """An independent generator for one (seed, symbol, purpose, keys) tuple.

    The symbol goes through BLAKE2b because Python's `hash()` is salted per process.
    """
    digest = hashlib.blake2b(symbol.encode(), digest_size=8).digest()
    entropy = [options.seed % 2**64, int.from_bytes(digest, "little"), tag, *keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def trade_stream(
    options: SyntheticOptions, symbol: str, day: int, block: int
) -> np.random.Generator:
    """The generator for the trades of one block of minutes of one session."""
    return stream(options, symbol, _TAG_TRADES, day, block)


@dataclass(frozen=True, eq=False)
class SessionPath:
    """Session-level draws for every session of the calendar (one symbol, one options)."""

    open_log: Float64s
    """Log price at each session's open (after its overnight gap)."""
    diffusion: Float64s
    """Intraday diffusion total per session (log)."""
    drift: Float64s
    """Expected intraday diffusion total per session (log), before the draw."""
    variance: Float64s
    """Intraday diffusion variance per session (log^2)."""
    jump_start: Int64s
    """Offset of each session's first jump in `jump_size` (length = sessions + 1)."""
    jump_size: Float64s


@dataclass(frozen=True, eq=False)
class MinutePath:
    """One session's minutes: prices in log space, arrivals and volume shape."""

    start_ns: Int64s
    log_open: Float64s
    log_close: Float64s
    log_high: Float64s
    log_low: Float64s
    sd: Float64s
    """Diffusion sd of each minute (log)."""
    trade_count: Int64s
    size_factor: Float64s
    """Multiplier on trade sizes from the intraday curve (mean about 1)."""
    volume_noise: Float64s
    """Lognormal noise (mean 1) on the bar volume of each minute."""


def smile(calendar: TradingCalendar, session: int) -> Float64s:
    """Intraday volume curve over the session's minutes, mean 1 (flat on `24x7`)."""
    if calendar.continuous:
        return np.ones(int(calendar.minutes[session]))
    x = calendar.session_fraction(session)
    curve = 1 + SMILE_OPEN * np.exp(-x / SMILE_DECAY) + SMILE_CLOSE * np.exp((x - 1) / SMILE_DECAY)
    normalised: Float64s = curve / curve.mean()
    return normalised


@functools.lru_cache(maxsize=256)
def session_path(options: SyntheticOptions, symbol: str) -> SessionPath:
    """Session-level draws for the whole calendar, cached (~10k sessions, a few ms)."""
    calendar = trading_calendar(options.calendar)
    count = len(calendar)
    blocks = -(-count // SESSION_BLOCK)
    gap_z, diffusion_z, jumps = _session_draws(options, symbol, blocks)
    share = calendar.minutes / calendar.nominal_minutes
    sigma2 = options.annual_volatility**2
    compensation = options.jumps_per_day * (math.exp(JUMP_LOG_SD**2 / 2) - 1)
    mean = ((options.annual_drift - sigma2 / 2) / calendar.sessions_per_year - compensation) * share
    variance = sigma2 / calendar.sessions_per_year * share
    gap_share = 0.0 if calendar.continuous else OVERNIGHT_VARIANCE_SHARE
    gap = gap_share * mean + np.sqrt(gap_share * variance) * gap_z[:count]
    drift = (1 - gap_share) * mean
    intraday_variance = (1 - gap_share) * variance
    diffusion = drift + np.sqrt(intraday_variance) * diffusion_z[:count]
    jump_start, jump_size, jump_total = _scaled_jumps(jumps, count, share)
    moves = gap + diffusion + jump_total
    return SessionPath(
        open_log=_anchored_open_log(options, calendar, moves, gap),
        diffusion=diffusion,
        drift=drift,
        variance=intraday_variance,
        jump_start=jump_start,
        jump_size=jump_size,
    )


_Jumps = tuple[Int64s, Float64s, Float64s]
"""Per block: jump counts per session, then each jump's size and thinning uniform."""


def _session_draws(
    options: SyntheticOptions, symbol: str, blocks: int
) -> tuple[Float64s, Float64s, list[_Jumps]]:
    # Every block is drawn whole, so a session's numbers never depend on how many
    # sessions the calendar holds after it.
    gap_z, diffusion_z, jumps = [], [], []
    for block in range(blocks):
        rng = stream(options, symbol, _TAG_SESSIONS, block)
        gap_z.append(rng.standard_normal(SESSION_BLOCK))
        diffusion_z.append(rng.standard_normal(SESSION_BLOCK))
        counts = rng.poisson(options.jumps_per_day, SESSION_BLOCK).astype(np.int64)
        total = int(counts.sum())
        jumps.append((counts, rng.normal(0.0, JUMP_LOG_SD, total), rng.random(total)))
    return np.concatenate(gap_z), np.concatenate(diffusion_z), jumps


def _scaled_jumps(
    jumps: list[_Jumps], count: int, share: Float64s
) -> tuple[Int64s, Float64s, Float64s]:
    counts = np.concatenate([c for c, _, _ in jumps])[:count]
    kept = int(counts.sum())
    sizes = np.concatenate([s for _, s, _ in jumps])[:kept]
    uniform = np.concatenate([u for _, _, u in jumps])[:kept]
    # A short session keeps each jump with probability = its share of a regular session
    # (thinning a Poisson process), so early closes get proportionally fewer jumps.
    owner = np.repeat(np.arange(count), counts)
    keep = uniform < np.minimum(share[owner], 1.0)
    kept_counts = np.bincount(owner[keep], minlength=count)
    start = np.concatenate(([0], np.cumsum(kept_counts))).astype(np.int64)
    total = np.bincount(owner[keep], weights=sizes[keep], minlength=count).astype(np.float64)
    return start, sizes[keep], total


def _anchored_open_log(
    options: SyntheticOptions, calendar: TradingCalendar, moves: Float64s, gap: Float64s
) -> Float64s:
    # prefix[i] = sum of moves before session i; the close before the anchor session is
    # log(start_price), so the walk runs forward and backward from 2020.
    anchor = int(np.searchsorted(calendar.day, ANCHOR_DAY.astype(np.int64)))
    prefix = np.concatenate(([0.0], np.cumsum(moves)))
    close_before = math.log(options.start_price) + prefix[:-1] - prefix[anchor]
    opened: Float64s = close_before + gap
    return opened


def minute_path(options: SyntheticOptions, symbol: str, session: int) -> MinutePath:
    """The minute path of one session, a pure function of (options, symbol, session)."""
    calendar = trading_calendar(options.calendar)
    sessions = session_path(options, symbol)
    count = int(calendar.minutes[session])
    curve = smile(calendar, session)
    rng = stream(options, symbol, _TAG_MINUTES, int(calendar.day[session]))
    # Draw order is part of the format: changing it changes every price.
    shocks = rng.standard_normal(count)
    jumps = sessions.jump_size[sessions.jump_start[session] : sessions.jump_start[session + 1]]
    jump_minutes = rng.integers(0, count, len(jumps))
    up, down = rng.exponential(EXCURSION, count), rng.exponential(EXCURSION, count)
    volume_noise = rng.lognormal(-0.5 * 0.3**2, 0.3, count)
    # Last, because Poisson draws consume a rate-dependent amount of the stream: prices
    # and ranges then stay the same when only `trades_per_minute` changes.
    arrivals = rng.poisson(options.trades_per_minute * curve)

    weights = curve**VOLATILITY_SMILE_POWER
    variance = sessions.variance[session] * weights / weights.sum()
    increments = _bridge(
        shocks, variance, sessions.drift[session], sessions.diffusion[session], count
    )
    np.add.at(increments, jump_minutes, jumps)
    log_close = sessions.open_log[session] + np.cumsum(increments)
    log_open = np.concatenate(([sessions.open_log[session]], log_close[:-1]))
    sd = np.sqrt(variance)
    return MinutePath(
        start_ns=calendar.minute_starts(session),
        log_open=log_open,
        log_close=log_close,
        log_high=np.maximum(log_open, log_close) + up * sd,
        log_low=np.minimum(log_open, log_close) - down * sd,
        sd=sd,
        trade_count=arrivals.astype(np.int64),
        size_factor=curve**SIZE_SMILE_POWER,
        volume_noise=volume_noise,
    )


def _bridge(
    shocks: Float64s, variance: Float64s, drift: float, total: float, count: int
) -> Float64s:
    # Independent normal increments conditioned on their sum: subtract the excess in
    # proportion to each increment's variance. The result sums exactly to the session's
    # diffusion total drawn at session level, which keeps minutes and sessions consistent.
    raw = drift / count + shocks * np.sqrt(variance)
    excess = raw.sum() - total
    spread = variance / variance.sum() if variance.sum() > 0 else np.full(count, 1 / count)
    bridged: Float64s = raw - excess * spread
    return bridged
