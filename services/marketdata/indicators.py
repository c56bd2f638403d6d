"""GetIndicators' domain: indicator specs parsed from their text, the warm-up each needs,
reading the bars with that warm-up, and computing the values (no gRPC, no protobuf).

Grammar (the contract's `buf.validate` pattern on `GetIndicatorsRequest.indicators`,
checked again here so this module stands on its own)::

    spec   = name [ "(" number { "," number } ")" ]      (no spaces)
    name   = sma | ema | rsi | macd | bbands | vwap | atr | obv | stoch | returns | volatility
    number = digits [ "." digits ]

Parameters are positional; trailing ones may be left out and take TA-Lib's defaults:

    spec                               lines                    warm-up (bars)
    sma(n=30)                          sma                      n - 1
    ema(n=30)                          ema                      n - 1 + 10 (n + 1)
    rsi(n=14)                          rsi                      n + 20 n
    macd(fast=12, slow=26, signal=9)   macd, signal, histogram  s + g - 2 + 10 (s + 1) + 10 (g + 1)
    bbands(n=20, k=2)                  upper, middle, lower     n - 1
    atr(n=14)                          atr                      n + 20 n
    stoch(fastk=14, slowk=3, slowd=3)  k, d                     fastk + slowk + slowd - 3
    obv                                obv                      0
    vwap                               vwap                     0
    returns                            returns                  1
    volatility(n=20)                   volatility               n

(s = slow, g = signal). Periods are whole numbers from TA-Lib's lower bound (2 for sma,
ema, rsi, bbands and MACD's fast and slow; 1 otherwise; 2 for volatility, a sample standard
deviation) up to `MAX_PERIOD`, which bounds the warm-up read; macd needs slow > fast;
bbands' k may be fractional. The definitions are `financelake.stream.indicators.batch`'s
(TA-Lib's): `returns` is ROCP(1), `volatility` the per-bar (not annualised) sample std of
log returns, `vwap` weights the typical price (H + L + C) / 3 as the stream's features do.
The contract's pattern has no `log_returns`, so it is not offered.

Warm-up: the number of bars before `start_time` a spec is computed from, each spec on its
own (so a spec's values never depend on the other specs of the request):

* Window indicators (sma, bbands, stoch, returns, volatility) need exactly their TA-Lib
  lookback; their first value in the range is then the exact one.
* Recursive indicators (ema, rsi, macd, atr) depend on their whole history. Reading it all
  is unbounded, so they read their lookback plus an "unstable period" (TA-Lib's term,
  `TA_SetUnstablePeriod`) of 20 time constants: 10 (n + 1) bars for an EMA
  (k = 2 / (n + 1)), 20 n for Wilder smoothing (k = 1 / n); MACD adds both its slow EMA's
  and its signal EMA's (the signal only settles once the MACD line has). The seed's
  weight in the first value served is then (1 - k)^(20 / k) < e^-20 (about 2e-9). The
  values are exactly TA-Lib's (unstable period 0) run on the bars from that warm-up start,
  not from the symbol's first bar; equivalently, TA-Lib with the unstable period above run
  on the same bars.
* Cumulative indicators (obv, vwap) start at the first bar of the range: OBV at that bar's
  volume (as TA-Lib starts at the first bar it is given), VWAP over the range's bars.

Warm-up bars are counted in bars, not time: markets close at night and at weekends, so
`read_bars` looks back over a calendar span that grows until it holds the warm-up bars (see
its docstring). When the lake holds fewer bars before the range than a spec wants, the spec
starts from the first bar there is (as TA-Lib on that shorter series), and values still
warming up at the start of the range are NaN.

NaN marks a value still warming up (the response carries it as a double NaN, "NaN" in JSON).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from financelake.services.errors import FieldViolation, InvalidInput
from financelake.services.ingestion.records import NANOS_PER_SECOND, Int64s, Interval
from financelake.services.marketdata.bar_store import NANOS_PER_MICRO, BarStore
from financelake.stream.indicators import batch
from financelake.stream.indicators._window import FloatArray

__all__ = [
    "MAX_BARS",
    "MAX_PERIOD",
    "Indicator",
    "IndicatorSpec",
    "IndicatorValues",
    "Indicators",
    "SpecError",
    "TooManyBars",
    "compute",
    "evaluate",
    "parse_spec",
    "parse_specs",
    "read_bars",
    "warmup_bars",
]

MAX_BARS = 10_000
"""Most bars one GetIndicators call computes values for (GetBars' largest page)."""

MAX_PERIOD = 1_000
"""Largest period any parameter may take: it bounds the warm-up read (ema(1000) reads
about 11 000 bars before the range)."""

EMA_TIME_CONSTANTS = 20
"""Unstable period of a recursive indicator, in time constants (1 / k bars): the seed's
weight left in the first value served is below e^-EMA_TIME_CONSTANTS."""

SPEC_PATTERN = re.compile(
    r"(?P<name>sma|ema|rsi|macd|bbands|vwap|atr|obv|stoch|returns|volatility)"
    r"(?:\((?P<params>[0-9]+(?:\.[0-9]+)?(?:,[0-9]+(?:\.[0-9]+)?)*)\))?"
)
"""The contract's pattern for one spec (matched whole)."""


class Indicator(Enum):
    """The indicators GetIndicators computes, by their spec name."""

    SMA = "sma"
    EMA = "ema"
    RSI = "rsi"
    MACD = "macd"
    BBANDS = "bbands"
    ATR = "atr"
    STOCH = "stoch"
    OBV = "obv"
    VWAP = "vwap"
    RETURNS = "returns"
    VOLATILITY = "volatility"


@dataclass(frozen=True, slots=True)
class _Param:
    """One positional parameter: its name, TA-Lib default, lower bound, and kind."""

    name: str
    default: float
    minimum: float
    whole: bool = True


def _period(name: str, default: int, minimum: int) -> _Param:
    return _Param(name, float(default), float(minimum))


_PARAMS: dict[Indicator, tuple[_Param, ...]] = {
    Indicator.SMA: (_period("n", 30, 2),),
    Indicator.EMA: (_period("n", 30, 2),),
    Indicator.RSI: (_period("n", 14, 2),),
    Indicator.MACD: (_period("fast", 12, 2), _period("slow", 26, 2), _period("signal", 9, 1)),
    Indicator.BBANDS: (_period("n", 20, 2), _Param("k", 2.0, 0.0, whole=False)),
    Indicator.ATR: (_period("n", 14, 1),),
    Indicator.STOCH: (_period("fastk", 14, 1), _period("slowk", 3, 1), _period("slowd", 3, 1)),
    Indicator.OBV: (),
    Indicator.VWAP: (),
    Indicator.RETURNS: (),
    Indicator.VOLATILITY: (_period("n", 20, 2),),
}

_LINES: dict[Indicator, tuple[str, ...]] = {
    Indicator.MACD: ("macd", "signal", "histogram"),
    Indicator.BBANDS: ("upper", "middle", "lower"),
    Indicator.STOCH: ("k", "d"),
}


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """One requested indicator with every parameter filled in.

    Attributes:
        text: The request's spelling, echoed in the response (e.g. "bbands(20,2)").
        indicator: Which indicator.
        params: Parameter name -> value, all of them (defaults included), in order; periods
            are ints, bbands' k a float.
    """

    text: str
    indicator: Indicator
    params: dict[str, int | float]

    def period(self, name: str) -> int:
        """The whole-number parameter `name`."""
        value = self.params[name]
        assert isinstance(value, int)
        return value

    @property
    def lines(self) -> tuple[str, ...]:
        """Names of the output lines, in the order `compute` returns them."""
        return _LINES.get(self.indicator, (self.indicator.value,))


class SpecError(ValueError):
    """A spec text that does not name an indicator with valid parameters."""


def parse_spec(text: str) -> IndicatorSpec:
    """The spec `text` stands for; `SpecError` saying why when it is not valid."""
    match = SPEC_PATTERN.fullmatch(text)
    if match is None:
        raise SpecError(
            f"{text!r} is not an indicator spec: expected name or name(p1,p2,...) with name "
            f"one of {', '.join(i.value for i in Indicator)} and unsigned numbers, no spaces"
        )
    indicator = Indicator(match["name"])
    declared = _PARAMS[indicator]
    given = match["params"].split(",") if match["params"] is not None else []
    if not declared and match["params"] is not None:
        raise SpecError(f"{indicator.value} takes no parameters")
    if len(given) > len(declared):
        names = ", ".join(p.name for p in declared)
        raise SpecError(f"{indicator.value} takes at most {len(declared)} parameters ({names})")
    params: dict[str, int | float] = {}
    for index, param in enumerate(declared):
        if index >= len(given):
            params[param.name] = int(param.default) if param.whole else param.default
            continue
        raw = given[index]
        if param.whole:
            if not raw.isdigit():
                raise SpecError(
                    f"{indicator.value}: {param.name} must be a whole number, got {raw}"
                )
            value: int | float = int(raw)
            if not param.minimum <= value <= MAX_PERIOD:
                raise SpecError(
                    f"{indicator.value}: {param.name} must be between {int(param.minimum)} "
                    f"and {MAX_PERIOD}, got {raw}"
                )
        else:
            value = float(raw)
            if not param.minimum <= value:
                raise SpecError(f"{indicator.value}: {param.name} must be >= {param.minimum}")
        params[param.name] = value
    if indicator is Indicator.MACD and params["slow"] <= params["fast"]:
        raise SpecError(
            f"macd: slow ({params['slow']}) must be greater than fast ({params['fast']})"
        )
    return IndicatorSpec(text, indicator, params)


def parse_specs(texts: Sequence[str], field: str = "indicators") -> list[IndicatorSpec]:
    """Every spec of `texts`, in order. Raises `InvalidInput` with one violation per invalid
    spec, on `field[i]` (the request's `indicators[i]`)."""
    specs: list[IndicatorSpec] = []
    violations: list[FieldViolation] = []
    for index, text in enumerate(texts):
        try:
            specs.append(parse_spec(text))
        except SpecError as error:
            violations.append(FieldViolation(f"{field}[{index}]", str(error), "INDICATOR_SPEC"))
    if violations:
        raise InvalidInput(
            "; ".join(f"{v.field}: {v.description}" for v in violations),
            violations=violations,
            reason="INVALID_INDICATOR_SPEC",
        )
    return specs


def _ema_unstable(n: int) -> int:
    # 1 / k = (n + 1) / 2 bars per time constant.
    return EMA_TIME_CONSTANTS * (n + 1) // 2


def _wilder_unstable(n: int) -> int:
    # 1 / k = n bars per time constant.
    return EMA_TIME_CONSTANTS * n


def warmup_bars(spec: IndicatorSpec) -> int:
    """How many bars before the range `spec` is computed from (see the module docstring)."""
    match spec.indicator:
        case Indicator.SMA | Indicator.BBANDS:
            return spec.period("n") - 1
        case Indicator.EMA:
            n = spec.period("n")
            return n - 1 + _ema_unstable(n)
        case Indicator.RSI | Indicator.ATR:
            n = spec.period("n")
            return n + _wilder_unstable(n)
        case Indicator.MACD:
            slow, signal = spec.period("slow"), spec.period("signal")
            return slow + signal - 2 + _ema_unstable(slow) + _ema_unstable(signal)
        case Indicator.STOCH:
            return spec.period("fastk") + spec.period("slowk") + spec.period("slowd") - 3
        case Indicator.RETURNS:
            return 1
        case Indicator.VOLATILITY:
            return spec.period("n")
        case Indicator.OBV | Indicator.VWAP:
            return 0


@dataclass(frozen=True, slots=True)
class IndicatorValues:
    """One spec's output over the range.

    Attributes:
        spec: The spec.
        lines: Line name -> one float64 per bar of the range (NaN while warming up), in
            `spec.lines` order.
    """

    spec: IndicatorSpec
    lines: dict[str, FloatArray]


@dataclass(frozen=True, slots=True)
class Indicators:
    """GetIndicators' answer in domain terms.

    Attributes:
        times_ns: Start time of every bar of the range, oldest first (ns since the epoch).
        series: One entry per spec, in request order, aligned with `times_ns`.
    """

    times_ns: Int64s
    series: list[IndicatorValues]


def _starts_ns(bars: pa.Table) -> Int64s:
    micros: Int64s = pc.cast(bars["start_time"], pa.int64()).to_numpy()
    return micros * NANOS_PER_MICRO


def _column(bars: pa.Table, name: str) -> FloatArray:
    values: FloatArray = np.asarray(bars[name].to_numpy(), dtype=np.float64)
    return values


def _lines(spec: IndicatorSpec, bars: pa.Table) -> tuple[FloatArray, ...]:
    close = _column(bars, "close")
    match spec.indicator:
        case Indicator.SMA:
            return (batch.sma(close, spec.period("n")),)
        case Indicator.EMA:
            return (batch.ema(close, spec.period("n")),)
        case Indicator.RSI:
            return (batch.rsi(close, spec.period("n")),)
        case Indicator.MACD:
            return tuple(
                batch.macd(close, spec.period("fast"), spec.period("slow"), spec.period("signal"))
            )
        case Indicator.BBANDS:
            return tuple(batch.bbands(close, spec.period("n"), float(spec.params["k"])))
        case Indicator.ATR:
            high, low = _column(bars, "high"), _column(bars, "low")
            return (batch.atr(high, low, close, spec.period("n")),)
        case Indicator.STOCH:
            high, low = _column(bars, "high"), _column(bars, "low")
            periods = (spec.period("fastk"), spec.period("slowk"), spec.period("slowd"))
            return tuple(batch.stoch(high, low, close, *periods))
        case Indicator.OBV:
            return (batch.obv(close, _column(bars, "volume")),)
        case Indicator.VWAP:
            high, low = _column(bars, "high"), _column(bars, "low")
            price = batch.typical_price(high, low, close)
            return (batch.vwap(price, _column(bars, "volume")),)
        case Indicator.RETURNS:
            return (batch.simple_returns(close),)
        case Indicator.VOLATILITY:
            return (batch.rolling_volatility(close, spec.period("n")),)


def compute(specs: Sequence[IndicatorSpec], bars: pa.Table, start_ns: int) -> Indicators:
    """Every spec over the bars of `bars` starting at or after `start_ns`.

    `bars` (oldest first, at least start_time, high, low, close, volume) holds the range's
    bars preceded by warm-up bars. Each spec is computed on its own `warmup_bars(spec)` last
    warm-up bars (fewer when `bars` holds fewer) plus the range, and the warm-up part of its
    output cut off.
    """
    starts = _starts_ns(bars)
    first = int(np.searchsorted(starts, start_ns, side="left"))
    series: list[IndicatorValues] = []
    for spec in specs:
        offset = max(0, first - warmup_bars(spec))
        outputs = _lines(spec, bars.slice(offset))
        cut = first - offset
        lines = {
            name: np.ascontiguousarray(values[cut:])
            for name, values in zip(spec.lines, outputs, strict=True)
        }
        series.append(IndicatorValues(spec, lines))
    return Indicators(starts[first:], series)


class TooManyBars(InvalidInput):
    """The requested range holds more bars than one call computes."""

    default_reason = "TOO_MANY_BARS"


CALENDAR_FACTORS: dict[Interval, int] = {Interval.D1: 2, Interval.WK1: 2}
"""First look-back span per warm-up bar, in the interval's nominal widths. Trading days are
about 5 of 7 calendar days less holidays (252 of 365), so 2 days per daily bar; a week per
weekly bar plus holiday weeks, 2. Intraday bars start at 1 (markets trading around the
clock fill it); closed nights and weekends are covered by `WIDENING` rounds."""

WIDENING = 4
"""Factor the look-back span grows by while it holds fewer than the warm-up bars."""

MAX_WIDENINGS = 3
"""Rounds of widening before concluding the lake holds no more bars before the range
(the span is then 64 times the first: over 16 calendar days per day of 1m warm-up, ample
for an exchange's nights, weekends and holidays)."""


def read_bars(
    store: BarStore,
    symbol: str,
    interval: Interval,
    start_ns: int,
    end_ns: int,
    warmup: int,
    *,
    max_bars: int = MAX_BARS,
) -> pa.Table:
    """The bars of [start_ns, end_ns) (at most `max_bars`) preceded by up to `warmup` bars.

    The range is read first, as one GetBars page of `max_bars`; more bars raise
    `TooManyBars` on start_time and end_time. The warm-up is then read from
    [start_ns - span, start_ns) with span = warmup x the interval's width x its
    `CALENDAR_FACTORS`, widened `WIDENING` times up to `MAX_WIDENINGS` times while it holds
    fewer than `warmup` bars; its last `warmup` bars are kept. Raises `UnknownSymbol` when
    the lake holds no bar of `symbol`.
    """
    page = store.page(symbol, interval, start_ns, end_ns, max_bars)
    if page.next_start_ns is not None:
        message = (
            f"the range holds more than {max_bars} {interval.value} bars; narrow "
            "start_time..end_time and ask for the rest in further calls"
        )
        raise TooManyBars(
            message,
            violations=[FieldViolation(f, message) for f in ("start_time", "end_time")],
            metadata={"max_bars": str(max_bars)},
        )
    if warmup == 0 or page.bars.num_rows == 0:
        return page.bars
    width_ns = interval.seconds * NANOS_PER_SECOND
    span = warmup * width_ns * CALENDAR_FACTORS.get(interval, 1)
    before = store.bars(symbol, interval, start_ns - span, start_ns)
    for _ in range(MAX_WIDENINGS):
        if before.num_rows >= warmup:
            break
        span *= WIDENING
        before = store.bars(symbol, interval, start_ns - span, start_ns)
    before = before.slice(max(0, before.num_rows - warmup))
    return pa.concat_tables([before, page.bars])


def evaluate(
    store: BarStore,
    symbol: str,
    interval: Interval,
    start_ns: int,
    end_ns: int,
    specs: Sequence[IndicatorSpec],
    *,
    max_bars: int = MAX_BARS,
) -> Indicators:
    """`specs` over `symbol`'s `interval` bars of [start_ns, end_ns), warm-up read as needed
    (blocking: Iceberg reads and the computation; run it in a worker thread)."""
    warmup = max((warmup_bars(spec) for spec in specs), default=0)
    bars = read_bars(store, symbol, interval, start_ns, end_ns, warmup, max_bars=max_bars)
    return compute(specs, bars, start_ns)
