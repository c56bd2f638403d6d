"""`make bench-gateway`: what Envoy adds to a unary call, GetQuote direct vs grpc-web vs REST.

One run starts a private Kafka (unless FINANCELAKE_KAFKA_BOOTSTRAP names one) and a private
home (FINANCELAKE_HOME in a temp folder), as `make bench-marketdata` does and with its
helpers: fresh ticks/bars topics (`create_topics`), `LAKE_DAYS` weekdays of 1-minute bars of
its `SYMBOLS` in `silver.bars` (`write_year` over the first days of its year) and a few
TickBatches per symbol (`publish_ticks`), so that GetQuote answers from live trades. Then it
starts the real server (`python -m financelake.services.marketdata`, configured only through
FINANCELAKE_*), waits until GetQuote answers (`wait_ready`), renders the LOCAL gateway config
(`financelake.gateway.render.render`, Target.LOCAL) with the marketdata upstream on the
server's port and the other three upstreams, the listener and the admin on free ports, runs
the `envoy` binary (`envoy_binary()`, `run_command`) and waits for its admin `/ready` LIVE.
The listener's local rate limit is raised to `RATE_LIMIT_PER_S` (the filter stays in the
path) so that the throughput extras are not answered 429 / RESOURCE_EXHAUSTED.

Latency: ONE sequential caller per mode, each with one persistent connection, symbols
rotating; `--warmup` calls per mode first, then `--calls` timed calls per mode in blocks of
`--block` calls, the modes alternating block by block (the order rotating each round) so that
drift affects all modes alike. Per call, the wall time (perf_counter) from sending the request
to having read the whole answer:

* `grpc_p50_ms` / `_p99_ms`: GetQuote straight to the server over a sync `grpc` channel,
  `unary_unary` with pre-serialized request bytes and no deserializer;
* `grpcweb_p50_ms` / `_p99_ms`: through Envoy as grpc-web: an HTTP/1.1 keep-alive
  `http.client.HTTPConnection` POSTing `application/grpc-web+proto` (the 5-byte frame) to
  `/financelake.marketdata.v1.MarketDataService/GetQuote` on the listener; the body (message
  frame + trailers frame) read in full;
* `rest_p50_ms` / `_p99_ms`: through Envoy's JSON transcoder: the same kind of connection,
  `GET /v1/symbols/{symbol}/quote`, the JSON body read in full;
* `envoy_overhead_p50_ms` = min(grpcweb, rest) p50 - grpc p50 (target <= 1).

The first answer of each mode is decoded and checked (status 200, grpc-status 0, the quote of
the asked symbol with a price); every later answer's status (and grpc-web's `grpc-status:0`
trailer) is checked without decoding. Extras: Envoy's own admin histograms of the run
(`upstream_rq_time` of the marketdata cluster, `downstream_rq_time` of the listener; ms
buckets, so coarse), CPU seconds of server, Envoy and client during the latency phase, and
the throughput of each mode with `--callers` concurrent closed-loop callers (threads, one
connection each) for `--throughput-duration` seconds; client, server and Envoy share the
machine's cores, so these say more about the machine than the gateway.

`ui_bundle_gzip_kb`: what a browser downloads for the first page, index.html and the JS/CSS
under dist/assets it references, each gzipped at level 9, in KiB
(`financelake.gateway.ui.first_load_gzip_kib` on `settings.gateway.ui_path`, which Envoy
serves at `/` during the run); null when the UI is not built (`make web`).

`--profile DIR` samples the server with py-spy during the latency phase (DIR/server-*.txt).

It prints a table, then as its last line one JSON object, also written to
`tests/bench/results/gateway.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from financelake.gateway.config import Target
from financelake.gateway.envoy import admin_ready, envoy_binary, run_command
from financelake.gateway.render import render
from financelake.gateway.ui import first_load_gzip_kib
from financelake.gen.marketdata.v1 import marketdata_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.services.marketdata.servicer import SERVICE_NAME
from financelake.services.settings import Settings
from tests.bench.ingest import free_port, kafka
from tests.bench.marketdata import (
    REPO,
    SYMBOLS,
    cpu_seconds,
    create_topics,
    percentile,
    publish_ticks,
    sampled,
    server_process,
    tail,
    trading_days,
    wait_ready,
    write_year,
)
from tests.bench.report import Row, publish
from tests.fixtures.gateway import grpc_web_frame, grpc_web_frames

LAKE_DAYS = 5  # a week of 1m bars: GetQuote reads live trades, the lake only has to exist
RATE_LIMIT_PER_S = 1_000_000
ENVOY_READY_S = 30.0
STATS_WAIT_S = 12.0
GRPC_PATH = f"/{SERVICE_NAME}/GetQuote"
MODES = ("grpc", "grpcweb", "rest")

Call = Callable[[int], None]
"""One GetQuote of the symbol at this index; raises if the answer is not a good one."""


@dataclass
class Options:
    """The knobs, reported with the results."""

    calls: int
    warmup: int
    block: int
    callers: int
    throughput_duration_s: float
    profile: Path | None = None
    kafka: str = ""


# ---- Envoy -------------------------------------------------------------------------------


def gateway_settings(settings: Settings, marketdata_port: int) -> Settings:
    """`settings` with the marketdata upstream on `marketdata_port`, every other upstream and
    the listener and admin on free ports, the descriptor and UI paths absolute, the limit
    raised."""
    servers = settings.servers.model_copy(
        update={
            "host": "127.0.0.1",
            "marketdata_port": marketdata_port,
            "ingestion_port": free_port("127.0.0.1"),
            "stream_port": free_port("127.0.0.1"),
            "prediction_port": free_port("127.0.0.1"),
        }
    )
    descriptor = settings.gateway.descriptor_path
    ui = settings.gateway.ui_path
    gateway = settings.gateway.model_copy(
        update={
            "host": "127.0.0.1",
            "port": free_port("127.0.0.1"),
            "admin_port": free_port("127.0.0.1"),
            "rate_limit_per_s": RATE_LIMIT_PER_S,
            "rate_limit_burst": RATE_LIMIT_PER_S,
            "descriptor_path": descriptor if descriptor.is_absolute() else REPO / descriptor,
            "ui_path": ui if ui.is_absolute() else REPO / ui,
        }
    )
    return settings.model_copy(update={"servers": servers, "gateway": gateway})


@contextlib.contextmanager
def envoy_process(settings: Settings, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Envoy on the rendered LOCAL config, until its admin says LIVE; SIGTERM on exit (also
    when it never got ready), SIGKILL after 10 s."""
    rendered = render(settings, Target.LOCAL, folder / "envoy-local.json")
    log = folder / "envoy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            run_command(rendered.config, envoy_binary()),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    try:
        deadline = time.monotonic() + ENVOY_READY_S
        while not (ready := admin_ready(settings.gateway.admin_port))[0]:
            if process.poll() is not None or time.monotonic() >= deadline:
                raise RuntimeError(f"envoy not ready ({ready[1]}):\n{tail(log)}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def envoy_stats(admin_port: int) -> dict[str, Any]:
    """Envoy's histograms of the run so far: P50/P99 (ms) of the marketdata cluster's
    upstream_rq_time and of the listener's downstream_rq_time. Envoy computes them when it
    flushes its stats (every 5 s), so this waits for a flush that has them."""
    deadline = time.monotonic() + STATS_WAIT_S
    while True:
        out = envoy_histograms(admin_port)
        if all(v is not None for v in out.values()) or time.monotonic() >= deadline:
            return out
        time.sleep(0.5)


def envoy_histograms(admin_port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{admin_port}/stats?format=json&filter=rq_time$"
    with urllib.request.urlopen(url, timeout=5) as response:
        stats = json.loads(response.read())
    wanted = {
        "cluster.marketdata.upstream_rq_time": "envoy_upstream_rq_time",
        "http.gateway.downstream_rq_time": "envoy_downstream_rq_time",
    }
    out: dict[str, Any] = {f"{key}_{q}_ms": None for key in wanted.values() for q in ("p50", "p99")}
    for entry in stats.get("stats", []):
        histograms = entry.get("histograms")
        if not isinstance(histograms, dict):
            continue
        quantiles = histograms.get("supported_quantiles", [])
        for computed in histograms.get("computed_quantiles", []):
            key = wanted.get(computed["name"])
            if key is None:
                continue
            cumulative = dict(zip(quantiles, computed["values"], strict=True))
            for q, name in ((50.0, "p50"), (99.0, "p99")):
                value = cumulative.get(q, {}).get("cumulative")
                out[f"{key}_{name}_ms"] = value
    return out


# ---- the three clients -------------------------------------------------------------------


def check_quote(quote: marketdata_pb2.Quote, symbol: str, mode: str) -> None:
    if quote.symbol != symbol or not quote.last_price > 0:
        raise AssertionError(f"{mode}: a bad quote for {symbol}: {quote}")


class Clients:
    """One persistent connection per mode, owned by one thread; `calls[mode](i)` does one
    GetQuote of SYMBOLS[i % len(SYMBOLS)]. `check()` decodes one answer of each mode."""

    def __init__(self, server_port: int, gateway_port: int) -> None:
        self.requests = [pb.GetQuoteRequest(symbol=s).SerializeToString() for s in SYMBOLS]
        self.frames = [grpc_web_frame(r) for r in self.requests]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{server_port}")
        self.get_quote = self.channel.unary_unary(GRPC_PATH)
        self.web = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=10)
        self.rest = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=10)
        self.web_headers = {
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "accept": "application/grpc-web+proto",
        }
        self.rest_paths = [f"/v1/symbols/{s}/quote" for s in SYMBOLS]
        self.calls: dict[str, Call] = {
            "grpc": self.call_grpc,
            "grpcweb": self.call_grpcweb,
            "rest": self.call_rest,
        }

    def close(self) -> None:
        self.web.close()
        self.rest.close()
        self.channel.close()

    def call_grpc(self, index: int) -> None:
        self.get_quote(self.requests[index % len(self.requests)], timeout=10)

    def _web(self, index: int) -> bytes:
        self.web.request("POST", GRPC_PATH, self.frames[index % len(self.frames)], self.web_headers)
        response = self.web.getresponse()
        body = response.read()
        if response.status != 200:
            raise AssertionError(f"grpcweb: HTTP {response.status}: {body[:300]!r}")
        return body

    def call_grpcweb(self, index: int) -> None:
        body = self._web(index)
        if b"grpc-status:0\r\n" not in body and not body.endswith(b"grpc-status:0"):
            raise AssertionError(f"grpcweb: not grpc-status 0: {body[-200:]!r}")

    def _rest(self, index: int) -> bytes:
        self.rest.request("GET", self.rest_paths[index % len(self.rest_paths)])
        response = self.rest.getresponse()
        body = response.read()
        if response.status != 200:
            raise AssertionError(f"rest: HTTP {response.status}: {body[:300]!r}")
        return body

    def call_rest(self, index: int) -> None:
        self._rest(index)

    def check(self) -> dict[str, str]:
        """One decoded answer per mode, checked; what each looked like, for the report."""
        symbol = SYMBOLS[0]
        answer = pb.GetQuoteResponse.FromString(self.get_quote(self.requests[0], timeout=10))
        check_quote(answer.quote, symbol, "grpc")
        messages, trailers = grpc_web_frames(self._web(0))
        if trailers.get("grpc-status") != "0" or len(messages) != 1:
            raise AssertionError(f"grpcweb: {trailers}, {len(messages)} messages")
        check_quote(pb.GetQuoteResponse.FromString(messages[0]).quote, symbol, "grpcweb")
        body = json.loads(self._rest(0))
        quote = body.get("quote", {})
        if quote.get("symbol") != symbol or not float(quote.get("last_price", 0)) > 0:
            raise AssertionError(f"rest: a bad quote for {symbol}: {body}")
        return {
            "grpc": f"{len(answer.SerializeToString())} B protobuf",
            "grpcweb": f"{len(messages[0])} B protobuf + trailers {sorted(trailers)}",
            "rest": f"JSON keys {sorted(quote)}",
        }


# ---- latency and throughput --------------------------------------------------------------


@dataclass
class Latency:
    """Per mode, the timed calls' milliseconds; CPU seconds used during the phase."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    cpu: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def measure_latency(clients: Clients, options: Options, pids: dict[str, int]) -> Latency:
    """Warm-up, then alternating blocks of sequential calls, one mode at a time."""
    for mode in MODES:
        call = clients.calls[mode]
        for i in range(options.warmup):
            call(i)
    result = Latency()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    clock = time.perf_counter_ns
    rounds = -(-options.calls // options.block)
    index = 0
    for round_ in range(rounds):
        order = MODES[round_ % len(MODES) :] + MODES[: round_ % len(MODES)]
        count = min(options.block, options.calls - round_ * options.block)
        for mode in order:
            call = clients.calls[mode]
            out = result.ms[mode]
            for i in range(index, index + count):
                t0 = clock()
                call(i)
                out.append((clock() - t0) / 1e6)
        index += count
    result.seconds = time.perf_counter() - started
    result.cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    return result


@dataclass
class Throughput:
    mode: str
    calls: int
    req_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_per_s: dict[str, float]


def measure_throughput(
    mode: str, server_port: int, gateway_port: int, options: Options, pids: dict[str, int]
) -> Throughput:
    """`callers` threads, each with its own Clients, calling `mode` back to back."""
    workers = [Clients(server_port, gateway_port) for _ in range(options.callers)]
    latencies: list[list[float]] = [[] for _ in workers]
    start = threading.Barrier(len(workers) + 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        call = workers[slot].calls[mode]
        out = latencies[slot]
        i = slot
        try:
            for _ in range(50):  # the connection's warm-up
                call(i)
            start.wait()
            while not stop.is_set():
                t0 = time.perf_counter_ns()
                call(i)
                out.append((time.perf_counter_ns() - t0) / 1e6)
                i += 1
        except BaseException as error:  # reported below; the barrier must not hang
            errors.append(error)
            start.abort()

    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in range(len(workers))]
    for thread in threads:
        thread.start()
    try:
        try:
            start.wait()
        except threading.BrokenBarrierError:
            stop.set()
            for thread in threads:
                thread.join(30)
            raise errors[0] if errors else RuntimeError(f"{mode}: a caller failed") from None
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t0 = time.perf_counter()
        time.sleep(options.throughput_duration_s)
        counts = sum(len(x) for x in latencies)
        seconds = time.perf_counter() - t0
        cpu = {name: (cpu_seconds(pid) - before[name]) / seconds for name, pid in pids.items()}
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        for worker in workers:
            worker.close()
    if errors:
        raise errors[0]
    merged = [ms for x in latencies for ms in x]
    return Throughput(
        mode=mode,
        calls=counts,
        req_per_s=counts / seconds,
        p50_ms=percentile(merged, 0.5),
        p99_ms=percentile(merged, 0.99),
        cpu_per_s=cpu,
    )


# ---- the run -----------------------------------------------------------------------------


def measure(settings: Settings, options: Options) -> dict[str, Any]:
    settings = create_topics(settings)
    rows, append_s, files = write_year(settings, trading_days()[:LAKE_DAYS])
    print(f"lake: {rows:,} bars in {append_s:.1f} s, {files} data files", file=sys.stderr)
    publish_ticks(settings)
    log = settings.home / "marketdata.log"
    with server_process(settings, log) as (server, port):
        ready_s = asyncio.run(wait_ready(server, port, log))
        print(f"server ready in {ready_s:.1f} s (pid {server.pid})", file=sys.stderr)
        gateway = gateway_settings(settings, port)
        folder = settings.home / "gateway"
        folder.mkdir()
        envoy_started = time.monotonic()
        with envoy_process(gateway, folder) as envoy:
            envoy_ready_s = time.monotonic() - envoy_started
            print(f"envoy ready in {envoy_ready_s:.1f} s (pid {envoy.pid})", file=sys.stderr)
            pids = {"server": server.pid, "envoy": envoy.pid, "client": os.getpid()}
            clients = Clients(port, gateway.gateway.port)
            try:
                answers = clients.check()
                with sampled(server.pid, options.profile, "latency"):
                    latency = measure_latency(clients, options, pids)
            finally:
                clients.close()
            stats = envoy_stats(gateway.gateway.admin_port)
            for mode in MODES:
                print(
                    f"{mode}: p50 {percentile(latency.ms[mode], 0.5):.3f} ms, "
                    f"p99 {percentile(latency.ms[mode], 0.99):.3f} ms",
                    file=sys.stderr,
                )
            throughput = []
            if options.callers > 0 and options.throughput_duration_s > 0:
                for mode in MODES:
                    t = measure_throughput(mode, port, gateway.gateway.port, options, pids)
                    print(f"{mode} x{options.callers}: {t.req_per_s:,.0f}/s", file=sys.stderr)
                    throughput.append(t)
            assert envoy.poll() is None, tail(folder / "envoy.log")
        assert server.poll() is None, tail(log)

    bundle_kib = first_load_gzip_kib(gateway.gateway.ui_path)
    p50 = {m: percentile(latency.ms[m], 0.5) for m in MODES}
    p99 = {m: percentile(latency.ms[m], 0.99) for m in MODES}
    calls = 3 * options.calls
    return {
        "grpc_p50_ms": round(p50["grpc"], 3),
        "grpc_p99_ms": round(p99["grpc"], 3),
        "grpcweb_p50_ms": round(p50["grpcweb"], 3),
        "grpcweb_p99_ms": round(p99["grpcweb"], 3),
        "rest_p50_ms": round(p50["rest"], 3),
        "rest_p99_ms": round(p99["rest"], 3),
        "envoy_overhead_p50_ms": round(min(p50["grpcweb"], p50["rest"]) - p50["grpc"], 3),
        "ui_bundle_gzip_kb": bundle_kib,
        "ui_bundle_note": (
            "index.html + the JS/CSS it references, gzip -9 each"
            if bundle_kib is not None
            else f"no UI built in {gateway.gateway.ui_path} (`make web`)"
        ),
        "envoy_stats": stats,
        "latency_cpu_ms_per_call": {
            name: round(1000 * seconds / calls, 3) for name, seconds in latency.cpu.items()
        },
        "throughput": [
            {
                "mode": t.mode,
                "callers": options.callers,
                "req_per_s": round(t.req_per_s),
                "p50_ms": round(t.p50_ms, 3),
                "p99_ms": round(t.p99_ms, 3),
                "cpu_per_s": {k: round(v, 2) for k, v in t.cpu_per_s.items()},
            }
            for t in throughput
        ],
        "samples": {
            "calls_per_mode": {m: len(latency.ms[m]) for m in MODES},
            "latency_phase_s": round(latency.seconds, 1),
            "answers": answers,
            "throughput_calls": {t.mode: t.calls for t in throughput},
        },
        "config": {
            "symbols": list(SYMBOLS),
            "lake_days": LAKE_DAYS,
            "lake_rows": rows,
            "lake_data_files": files,
            "warmup_per_mode": options.warmup,
            "block": options.block,
            "callers": options.callers,
            "throughput_duration_s": options.throughput_duration_s,
            "gateway_rate_limit_per_s": RATE_LIMIT_PER_S,
            "envoy_concurrency": 1,
            "http_client": "http.client HTTP/1.1 keep-alive",
            "grpc_client": "sync grpc channel, unary_unary on bytes",
            "server_ready_s": round(ready_s, 1),
            "envoy_ready_s": round(envoy_ready_s, 1),
            "kafka": options.kafka,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }


def table(result: dict[str, Any]) -> list[Row]:
    """The human-readable part: (key, value, note) rows."""
    s = result["samples"]
    calls = s["calls_per_mode"]["grpc"]
    rows: list[Row] = [
        ("grpc_p50_ms", f"{result['grpc_p50_ms']:.3f}", f"direct, {calls:,} sequential calls"),
        ("grpc_p99_ms", f"{result['grpc_p99_ms']:.3f}", ""),
        ("grpcweb_p50_ms", f"{result['grpcweb_p50_ms']:.3f}", "Envoy grpc-web, HTTP/1.1"),
        ("grpcweb_p99_ms", f"{result['grpcweb_p99_ms']:.3f}", ""),
        ("rest_p50_ms", f"{result['rest_p50_ms']:.3f}", "Envoy JSON transcoder, HTTP/1.1"),
        ("rest_p99_ms", f"{result['rest_p99_ms']:.3f}", ""),
        (
            "envoy_overhead_p50_ms",
            f"{result['envoy_overhead_p50_ms']:.3f}",
            "min(grpcweb, rest) p50 - grpc p50; target <= 1",
        ),
        (
            "ui_bundle_gzip_kb",
            "null" if result["ui_bundle_gzip_kb"] is None else f"{result['ui_bundle_gzip_kb']:.1f}",
            result["ui_bundle_note"],
        ),
    ]
    stats = result["envoy_stats"]
    rows += [
        (
            f"  {key}",
            "-" if value is None else f"{value:g}",
            "Envoy admin, whole-ms timer: 0 = under 1 ms",
        )
        for key, value in stats.items()
    ]
    cpu = result["latency_cpu_ms_per_call"]
    rows.append(
        (
            "  cpu ms/call",
            "",
            ", ".join(f"{name} {value:.3f}" for name, value in cpu.items()) + " (all modes)",
        )
    )
    rows += [
        (
            f"  {t['mode']} x{t['callers']} req/s",
            f"{t['req_per_s']:,}",
            f"p50 {t['p50_ms']:.2f} p99 {t['p99_ms']:.2f} ms; cpu/s "
            + " ".join(f"{k} {v:.2f}" for k, v in t["cpu_per_s"].items()),
        )
        for t in result["throughput"]
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="timed calls per mode")
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls per mode first")
    parser.add_argument("--block", type=int, default=250, help="calls per mode per turn")
    parser.add_argument("--callers", type=int, default=4, help="throughput extras; 0: none")
    parser.add_argument("--throughput-duration", type=float, default=3.0)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the server with py-spy into this folder during the latency phase",
    )
    args = parser.parse_args()
    options = Options(
        calls=args.calls,
        warmup=args.warmup,
        block=args.block,
        callers=args.callers,
        throughput_duration_s=args.throughput_duration,
        profile=args.profile,
    )
    with tempfile.TemporaryDirectory(prefix="financelake-bench-") as tmp:
        home = Path(tmp)
        with kafka(home) as (settings, kind):
            options.kafka = kind
            private = settings.model_copy(update={"home": home / "gateway-home"})
            private.home.mkdir()
            result = measure(private, options)
    publish("gateway", result, table(result))


if __name__ == "__main__":
    main()
