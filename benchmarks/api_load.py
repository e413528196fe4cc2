"""The sweep service under load (issue 13, acceptances 6 and 7).

Starts a real `lightsweep serve` on a free loopback port, submits a digits CNN sweep (a small CNN, many trials of
a few epochs), and once the sweep reports epochs runs paired phases: PAIRS x [PHASE_S without load, PHASE_S
with load], alternating so that drift (trials of another size, a warmer cache) falls on both sides. The load
comes from a separate process (asyncio + httpx): CLIENTS clients each polling GET /jobs/{id} every INTERVAL s
and SUBSCRIBERS clients reading /jobs/{id}/events, during the load phases only.

Measured:
- the polls' latency (request sent to answer read, as the polling client sees it: p50, p99, max), errors
  (a status other than 200, a failed connection or a timeout; also for the SSE subscribers), requests/s;
- the sweep's epoch time with and without load: a thread polls the job's Optuna storage every 20 ms and notes
  when each (trial, epoch) intermediate value first appears; an epoch's time is the gap to the trial's previous
  one (epoch 0, which includes the trial's start, is left out), counted in the phase that holds both ends;
- the epoch events' delivery delay: one SSE subscriber (in this process, all along) notes when each `epoch`
  event arrives; delay = its arrival - the value's first appearance in the storage.

Also the CPU each part used (server, sweep, load generator, everything else on the machine) and how late the
load generator's own event loop ran, since both bound what the latencies can say on a shared 2-core machine.

    python benchmarks/api_load.py [--pairs 3] [--phase-s 10] [--clients 200] [--subscribers 50] [--interval 1]
                                  [--job-threads N] [--workdir DIR] [--json FILE]

--job-threads N runs the sweep with N torch threads (OMP_NUM_THREADS in the server's environment, which its jobs
inherit). The load process is this script again: `api_load.py --load URL JOB WINDOWS CLIENTS SUBSCRIBERS
--interval S`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "api-load-benchmark-token"
DATA_DIR = Path(os.environ.get("LIGHTSWEEP_DATA_DIR", ROOT.parent / "shared" / "data"))
# A small CNN on digits, its size fixed (the sweep samples the rest of the family's space): an epoch takes about
# half a second on a shared core, long against the storage watcher's 20 ms and the service's 0.25 s polls.
CNN = {
    "model.filters": 128,
    "model.conv_layers": 2,
    "model.kernel_size": 3,
    "model.hidden_layers": 1,
    "model.first_hidden_units": 128,
    "dataset.batch_size": 32,
    "trainer.num_sanity_val_steps": 0,
    "trainer.enable_model_summary": False,
    "trainer.enable_progress_bar": False,
}
POLL_TIMEOUT_S = 10.0
SETTLE_S = 1.0  # the clients of a load phase connect during its first second; "settled" latencies leave it out
LINGER_S = 0.5  # the subscribers leave this long after the polls end


# -- the server and the sweep ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, job_threads: int | None) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "LIGHTSWEEP_API_TOKEN": TOKEN, "LIGHTSWEEP_DATA_DIR": str(DATA_DIR)}
    env.pop("HYDRA_FULL_ERROR", None)
    if job_threads:  # the jobs inherit the server's environment; torch sizes its thread pool from this
        env["OMP_NUM_THREADS"] = str(job_threads)
    command = [sys.executable, "-c", "from lightsweep.cli import main; main()", "serve"]
    log = open(home.parent / "server.log", "ab")  # noqa: SIM115 (kept open for the server's life)
    server = subprocess.Popen([*command, "--port", str(port), "--home", str(home)], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the server did not answer in 60 s: see {log.name}")


def submit(client: Any, trials: int, epochs: int) -> dict[str, Any]:
    body = {"dataset": "digits", "model": "cnn", "trials": trials, "max_epochs": epochs, "overrides": CNN}
    answer = client.post("/optimize", json=body)
    if answer.status_code != 202:
        raise RuntimeError(f"POST /optimize answered {answer.status_code}: {answer.text}")
    return answer.json()


class StorageWatcher(threading.Thread):
    """Notes when each (trial number, epoch) intermediate value first appears in the job's Optuna storage.
    Reads the SQLite file directly, read-only: a query costs microseconds, where loading the study through
    Optuna every 20 ms would take a share of the CPU the sweep is measured on."""

    def __init__(self, database: Path, period_s: float = 0.02) -> None:
        super().__init__(daemon=True, name="storage-watcher")
        self.database, self.period_s = database, period_s
        self.appeared: dict[tuple[int, int], float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        last_id, connection = 0, None
        while not self.stopped.is_set():
            try:
                if connection is None and self.database.exists():
                    connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=0.005)
                if connection is not None:
                    rows = connection.execute(
                        "SELECT v.trial_intermediate_value_id, t.number, v.step FROM trial_intermediate_values v "
                        "JOIN trials t ON t.trial_id = v.trial_id WHERE v.trial_intermediate_value_id > ?",
                        (last_id,),
                    ).fetchall()
                    now = time.time()
                    for row_id, number, step in rows:
                        self.appeared.setdefault((number, step), now)
                        last_id = max(last_id, row_id)
            except sqlite3.OperationalError:  # the sweeper holds the write lock, or the schema is not made yet
                pass
            self.stopped.wait(self.period_s)


class EpochSubscriber(threading.Thread):
    """One SSE subscriber for the whole run: when each `epoch` event arrived."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__(daemon=True, name="epoch-subscriber")
        self.url, self.job_id = url, job_id
        self.arrived: dict[tuple[int, int], float] = {}
        self.error: str | None = None

    def run(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            with httpx.stream("GET", f"{self.url}/jobs/{self.job_id}/events", headers=headers, timeout=None) as stream:
                kind = None
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "epoch":
                        data = json.loads(line[6:])
                        self.arrived.setdefault((data["number"], data["epoch"]), time.time())
        except httpx.HTTPError as exc:  # the server stopped at the end: anything before that is an error
            self.error = repr(exc)


class CpuSampler(threading.Thread):
    """Every 0.25 s, the CPU seconds used so far by the server, the sweep (its runner's process group), the
    load generator, this script (its watcher threads) and the whole machine (the rest: other people's work on
    a shared machine)."""

    def __init__(self, server_pid: int, job_dir: Path) -> None:
        super().__init__(daemon=True, name="cpu-sampler")
        self.server_pid, self.job_dir = server_pid, str(job_dir)
        self.generator_pid: int | None = None
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self.stopped.is_set():
            processes = _processes()
            sweep = next(
                (
                    pid
                    for pid, (_, command) in processes.items()
                    if "lightsweep.service.runner" in command and self.job_dir in command
                ),
                None,
            )
            used = {
                "server": _cpu([self.server_pid]),
                "sweep": _cpu([pid for pid, (group, _) in processes.items() if group == sweep]),
                "load generator": _cpu([self.generator_pid] if self.generator_pid else []),
                "this script": _cpu([os.getpid()]),
                "machine": _machine_busy_ticks(),
            }
            self.samples.append((time.time(), {name: ticks / tick for name, ticks in used.items()}))
            self.stopped.wait(0.25)

    def cores(self, start: float, end: float) -> dict[str, float]:
        """Cores used on average in [start, end], from the samples nearest inside it."""
        inside = [(at, used) for at, used in self.samples if start <= at <= end]
        if len(inside) < 2:
            return {}
        (first_at, first), (last_at, last) = inside[0], inside[-1]
        cores = {name: (last[name] - first[name]) / (last_at - first_at) for name in first}
        cores["others"] = cores.pop("machine") - sum(cores.values())
        return cores


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (process group, command line) of every process."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(stat.parent.name)] = (int(text[text.rindex(")") + 2 :].split()[2]), command)
    return found


def _cpu(pids: list[int]) -> int:
    """user + system clock ticks of these processes (all their threads) so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _machine_busy_ticks() -> int:
    user, nice, system, idle, iowait, *rest = map(int, Path("/proc/stat").read_text().split("\n")[0].split()[1:])
    return user + nice + system + sum(rest[:3])  # irq, softirq, steal


# -- the load process --------------------------------------------------------------------------------------
def load(url: str, job_id: str, windows: list[tuple[float, float]], clients: int, subscribers: int, interval: float):
    """Runs in its own process: the load during each window (absolute time.time() bounds), idle between."""
    import asyncio

    import httpx

    async def poller(client: httpx.AsyncClient, end: float, offset: float, found: dict[str, Any]) -> None:
        tick = time.time() + offset  # spread over the interval: not 200 requests on the same millisecond
        while tick < end:
            await asyncio.sleep(max(0.0, tick - time.time()))
            started = time.perf_counter()
            try:
                answer = await client.get(f"/jobs/{job_id}")
                await answer.aread()
                found["latencies_ms"].append((time.perf_counter() - started) * 1000)
                if tick - found["start"] >= SETTLE_S:
                    found["settled_ms"].append(found["latencies_ms"][-1])
                if answer.status_code != 200:
                    found["errors"].append(f"GET /jobs/{{id}}: {answer.status_code}")
            except httpx.HTTPError as exc:
                found["errors"].append(f"GET /jobs/{{id}}: {exc!r}")
            tick += interval if interval > 0 else time.time() - tick

    async def subscriber(client: httpx.AsyncClient, end: float, offset: float, found: dict[str, Any]) -> None:
        """Joins `offset` s into the window (not all in the same millisecond: each join replays the job's events
        so far), leaves once the polls are over (a mass disconnect would land on the last polls)."""
        await asyncio.sleep(offset)
        try:
            async with asyncio.timeout(max(0.0, end + LINGER_S - time.time())):
                async with client.stream("GET", f"/jobs/{job_id}/events") as stream:
                    if stream.status_code != 200:
                        found["errors"].append(f"GET /jobs/{{id}}/events: {stream.status_code}")
                        return
                    async for line in stream.aiter_lines():
                        found["events"] += line.startswith("event: ")
        except TimeoutError:  # the window ended: the subscriber leaves, as a closed browser tab does
            pass
        except httpx.HTTPError as exc:
            found["errors"].append(f"GET /jobs/{{id}}/events: {exc!r}")

    async def lag(end: float, found: dict[str, Any]) -> None:
        """How late this process's event loop wakes a 10 ms sleep: the part of a latency that is the load
        generator's own (a starved or busy loop reads answers late), not the server's."""
        while time.time() < end:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            found["loop_lag_ms"].append((time.perf_counter() - started) * 1000 - 10)

    async def window(start: float, end: float) -> dict[str, Any]:
        found: dict[str, Any] = {"start": start, "end": end, "latencies_ms": [], "errors": [], "events": 0}
        found["loop_lag_ms"], found["settled_ms"] = [], []
        # One client (one connection) per poller and per subscriber, as 250 browsers would have. In a shared
        # pool, httpx's bookkeeping grows with the requests in flight times the connections: once the answers
        # slowed down it ate a core by itself and read them seconds late (the client's delay, not the server's).
        # One TLS context for all (httpx makes one per client otherwise, 30 ms each, though nothing here is TLS).
        options = {
            "base_url": url,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "verify": ssl.create_default_context(),
        }
        clients_of = [httpx.AsyncClient(**options, timeout=POLL_TIMEOUT_S) for _ in range(clients)]
        streams_of = [httpx.AsyncClient(**options, timeout=None) for _ in range(subscribers)]
        await asyncio.sleep(max(0.0, start - time.time()))
        tasks = [subscriber(streams, end, SETTLE_S * n / subscribers, found) for n, streams in enumerate(streams_of)]
        spread = interval if interval > 0 else 0.0
        tasks += [poller(polls, end, spread * n / clients, found) for n, polls in enumerate(clients_of)]
        tasks.append(lag(end, found))
        await asyncio.gather(*tasks)
        for client in clients_of + streams_of:
            await client.aclose()
        return found

    async def main() -> list[dict[str, Any]]:
        return [await window(start, end) for start, end in windows]

    print(json.dumps(asyncio.run(main())))


# -- the measurement ---------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def median(values: list[float]) -> float:
    """Of the numbers measured (a phase without a whole epoch in it has none: nan)."""
    measured = [value for value in values if value == value]
    return statistics.median(measured) if measured else float("nan")


def epoch_times(appeared: dict[tuple[int, int], float], start: float, end: float) -> list[float]:
    """Seconds between a trial's consecutive epoch reports, both inside [start, end)."""
    return [
        at - appeared[(number, step - 1)]
        for (number, step), at in appeared.items()
        if step >= 1 and (number, step - 1) in appeared and start <= appeared[(number, step - 1)] and at < end
    ]


def delays(appeared: dict, arrived: dict, start: float, end: float) -> list[float]:
    return [arrived[key] - at for key, at in appeared.items() if key in arrived and start <= at < end]


def measure(opts: argparse.Namespace) -> dict[str, Any]:
    import httpx

    workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="lightsweep-api-load-"))
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    server, url = start_server(home, opts.job_threads)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
            job = submit(client, opts.trials, opts.epochs)
            try:
                return run_phases(opts, client, url, job["id"], home / "jobs" / job["id"], server.pid)
            finally:
                stop(client, job["id"])
    finally:
        server.terminate()
        server.wait(timeout=60)


def run_phases(
    opts: argparse.Namespace, client: Any, url: str, job_id: str, job_dir: Path, server_pid: int
) -> dict[str, Any]:
    storage = StorageWatcher(job_dir / "sweep" / "optuna.db")
    subscriber = EpochSubscriber(url, job_id)
    cpu = CpuSampler(server_pid, job_dir)
    storage.start(), subscriber.start(), cpu.start()
    try:
        deadline = time.monotonic() + 300
        while len(storage.appeared) < 3:  # the sweep is under way: its imports and first trial are behind
            if time.monotonic() > deadline or client.get(f"/jobs/{job_id}").json()["state"] != "running":
                raise RuntimeError(f"the sweep reported no epochs: see {job_dir / 'job.log'}")
            time.sleep(0.5)
        begin = time.time() + 3.0  # time for the load process to start (its imports) before the first phase
        quiet = [(begin + 2 * k * opts.phase_s, begin + (2 * k + 1) * opts.phase_s) for k in range(opts.pairs)]
        loaded = [(start + opts.phase_s, end + opts.phase_s) for start, end in quiet]
        arguments = [url, job_id, json.dumps(loaded), str(opts.clients), str(opts.subscribers)]
        command = [sys.executable, __file__, "--load", *arguments, "--interval", str(opts.interval)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as generator:
            cpu.generator_pid = generator.pid
            windows = json.loads(generator.communicate()[0])
        if generator.returncode != 0:
            raise RuntimeError(f"the load generator failed (exit {generator.returncode})")
        time.sleep(2.0)  # the last epoch events of the last phase reach the subscriber
        if (state := client.get(f"/jobs/{job_id}").json()["state"]) != "running":
            raise RuntimeError(f"the sweep ended during the measurement ({state}): ask for more --trials")
    finally:
        storage.stopped.set(), cpu.stopped.set()
    return summarize(opts, windows, quiet, storage.appeared, subscriber, cpu)


def stop(client: Any, job_id: str) -> None:
    """Stop the sweep and wait until its process group is gone (the server escalates to SIGKILL)."""
    client.post(f"/jobs/{job_id}/stop")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and client.get(f"/jobs/{job_id}").json()["state"] in ("queued", "running"):
        time.sleep(0.5)


def summarize(
    opts, windows: list[dict], quiet: list[tuple], appeared: dict, subscriber: EpochSubscriber, cpu: CpuSampler
) -> dict:
    latencies = [ms for w in windows for ms in w["latencies_ms"]]
    errors = [e for w in windows for e in w["errors"]]
    load_s = sum(w["end"] - w["start"] for w in windows)
    pairs = []
    for (q_start, q_end), w in zip(quiet, windows):
        without = epoch_times(appeared, q_start, q_end)
        with_load = epoch_times(appeared, w["start"], w["end"])
        pairs.append(
            {
                "epoch_s_without": median(without),
                "epoch_s_with": median(with_load),
                "epochs": [len(without), len(with_load)],
                "delay_s_without": delays(appeared, subscriber.arrived, q_start, q_end),
                "delay_s_with": delays(appeared, subscriber.arrived, w["start"], w["end"]),
                "poll_p99_ms": percentile(w["latencies_ms"], 99),
                "cores_without": cpu.cores(q_start, q_end),
                "cores_with": cpu.cores(w["start"], w["end"]),
            }
        )
    every_delay = [d for p in pairs for d in p["delay_s_without"] + p["delay_s_with"]]
    under_load = [d for p in pairs for d in p["delay_s_with"]]
    return {
        "settings": vars(opts),
        "polls": len(latencies),
        "requests_per_s": len(latencies) / load_s,
        "poll_ms": {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": max(latencies, default=float("nan")),
        },
        "settled_poll_ms": {
            "p50": percentile([ms for w in windows for ms in w["settled_ms"]], 50),
            "p99": percentile([ms for w in windows for ms in w["settled_ms"]], 99),
        },
        "generator_loop_lag_ms": {
            "p50": percentile([ms for w in windows for ms in w["loop_lag_ms"]], 50),
            "p99": percentile([ms for w in windows for ms in w["loop_lag_ms"]], 99),
        },
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:10],
        "sse_events_received": sum(w["events"] for w in windows),
        "epoch_s_without": median([p["epoch_s_without"] for p in pairs]),
        "epoch_s_with": median([p["epoch_s_with"] for p in pairs]),
        "slowdown": median([p["epoch_s_with"] / p["epoch_s_without"] for p in pairs]),
        "delivery_s": {"median": median(every_delay), "max": max(every_delay, default=float("nan"))},
        "delivery_s_under_load": {"median": median(under_load), "max": max(under_load, default=float("nan"))},
        "cores": {side: mean_cores([p[f"cores_{side}"] for p in pairs]) for side in ("without", "with")},
        "epochs_seen": len(appeared),
        "epochs_delivered": len(subscriber.arrived),
        "subscriber_error": subscriber.error,
        "pairs": [{k: v for k, v in p.items() if not k.startswith("delay")} for p in pairs],
    }


def mean_cores(phases: list[dict[str, float]]) -> dict[str, float]:
    measured = [phase for phase in phases if phase]
    return {name: statistics.fmean(phase[name] for phase in measured) for name in measured[0]} if measured else {}


def report(result: dict[str, Any]) -> str:
    opts, nan = result["settings"], float("nan")
    poll, delivery, loaded = result["poll_ms"], result["delivery_s"], result["delivery_s_under_load"]
    rows = [
        ("GET /jobs/{id} latency p50 / p99 / max", f"{poll['p50']:.1f} / {poll['p99']:.1f} / {poll['max']:.1f} ms"),
        (
            f"the same after each phase's first {SETTLE_S:g} s (while its connections open) p50 / p99",
            "{p50:.1f} / {p99:.1f} ms".format(**result["settled_poll_ms"]),
        ),
        (
            "load generator's event-loop lag p50 / p99 (part of the latency)",
            "{p50:.1f} / {p99:.1f} ms".format(**result["generator_loop_lag_ms"]),
        ),
        ("errors (polls + SSE)", f"{result['errors']}"),
        ("requests/s (polls)", f"{result['requests_per_s']:.0f} ({result['polls']} polls)"),
        ("SSE events received by the load's subscribers", f"{result['sse_events_received']}"),
        (
            "epoch time without / with load (median of pairs)",
            f"{result['epoch_s_without']:.3f} / {result['epoch_s_with']:.3f} s (x{result['slowdown']:.2f})",
        ),
        ("epoch event delivery median / max (all phases)", f"{delivery['median']:.3f} / {delivery['max']:.3f} s"),
        ("epoch event delivery median / max (under load)", f"{loaded['median']:.3f} / {loaded['max']:.3f} s"),
        ("epochs reported / delivered to the subscriber", f"{result['epochs_seen']} / {result['epochs_delivered']}"),
    ]
    pairs = [
        f"| {n + 1} | {p['epoch_s_without']:.3f} | {p['epoch_s_with']:.3f} | {p['epochs'][0]} / {p['epochs'][1]} | "
        f"{p['poll_p99_ms']:.1f} | {p['cores_without'].get('others', nan):.2f} / "
        f"{p['cores_with'].get('others', nan):.2f} |"
        for n, p in enumerate(result["pairs"])
    ]
    return "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            *[f"| {name} | {value} |" for name, value in rows],
            "",
            "CPU, in cores used (mean of the phases; `others`: everything else running on the machine):",
            "",
            "| | " + " | ".join(result["cores"]["without"]) + " |",
            "|---|" + "---|" * len(result["cores"]["without"]),
            *[
                f"| {side} load | " + " | ".join(f"{cores:.2f}" for cores in result["cores"][side].values()) + " |"
                for side in ("without", "with")
            ],
            "",
            f"Pairs ({opts['phase_s']:g} s without load, then {opts['phase_s']:g} s with it):",
            "",
            "| pair | epoch s without | epoch s with | epochs counted | poll p99 ms | others' cores without / with |",
            "|---|---|---|---|---|---|",
            *pairs,
        ]
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        parser = argparse.ArgumentParser(prog="api_load.py --load")
        parser.add_argument("url")
        parser.add_argument("job_id")
        parser.add_argument("windows", type=json.loads)
        parser.add_argument("clients", type=int)
        parser.add_argument("subscribers", type=int)
        parser.add_argument("--interval", type=float, required=True)
        opts = parser.parse_args(sys.argv[2:])
        return load(opts.url, opts.job_id, opts.windows, opts.clients, opts.subscribers, opts.interval)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--phase-s", type=float, default=10.0, help="each phase; the load lasts pairs x phase-s")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a client's polls; 0: no pause")
    parser.add_argument("--trials", type=int, default=40, help="enough to outlast the measurement")
    parser.add_argument("--job-threads", type=int, default=None, help="torch threads of the sweep (OMP_NUM_THREADS)")
    parser.add_argument("--epochs", type=int, default=15, help="per trial: most of a trial in epochs")
    parser.add_argument("--workdir", default=None, help="the service home and logs (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    opts = parser.parse_args()
    result = measure(opts)
    table = report(result)
    print(table)
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2, default=str))
    sys.path.insert(0, str(Path(__file__).parent))
    from _results import machine, write_section

    command = (
        f"python benchmarks/api_load.py --pairs {opts.pairs} --phase-s {opts.phase_s:g} --clients {opts.clients} "
        f"--subscribers {opts.subscribers} --interval {opts.interval:g}"
        + (f" --job-threads {opts.job_threads}" if opts.job_threads else "")
    )
    threads = f"--job-threads {opts.job_threads}" if opts.job_threads else "torch's default threads"
    write_section(
        "api_load" + (f"-job-threads{opts.job_threads}" if opts.job_threads else ""),
        "\n".join(
            [
                "## Sweep service under load (issue 13, acceptances 6-7): `lightsweep serve` during a digits CNN "
                f"sweep ({threads})",
                "",
                f"`{command}` on {machine()}; the server, the sweep and the load generator share these cores.",
                f"{opts.clients} clients each poll GET /jobs/{{id}} every {opts.interval:g} s and {opts.subscribers} "
                f"SSE subscribers read /jobs/{{id}}/events, {opts.pairs} x {opts.phase_s:g} s of load alternating "
                "with as long without (targets: poll p99 < 50 ms, 0 errors, epoch events delivered within 1 s).",
                "",
                table,
            ]
        ),
    )


if __name__ == "__main__":
    main()
