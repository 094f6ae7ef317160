"""``python -m ether_site.cluster --workers N``: ``make run WORKERS=N``.

N daphne processes of Ether on free ports of 127.0.0.1 behind haproxy (Debian's) on one
address, on Postgres + Redis; the background workers (``sweep_leases``, ``send_webhooks``,
``sweep_verifications``) started once beside them; one Prometheus multiprocess directory
for all. haproxy's config is ``deploy/haproxy/ether.cfg.in`` with the ports filled in,
written to ``VAR/cluster/haproxy.cfg``; haproxy sends a process traffic only while its
``/readyz`` answers 200. Everything stops together: on Ctrl-C or SIGTERM, when any of the
processes exits, and (``PR_SET_PDEATHSIG``) when this launcher dies.

It refuses to start without ``DATABASE_URL`` (Postgres) and ``REDIS_URL``: N processes
cannot share SQLite's single writer, and the in-memory channel layer would keep each
process's events to itself. docs/deploy.md, "Several processes on one machine".

Django is never imported here (the children import it); tests and benchmarks reuse
``render_config`` and ``die_with_parent``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from string import Template
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "haproxy" / "ether.cfg.in"
WORKERS = {
    "sweep_leases": "sweep.log",
    "send_webhooks": "webhooks.log",
    "sweep_verifications": "sweep-verify.log",
}
LOCAL_URLS = (
    "DATABASE_URL=postgres://postgres@127.0.0.1:5432/ether REDIS_URL=redis://127.0.0.1:6379/0"
)
_PR_SET_PDEATHSIG = 1


class Refused(Exception):
    """Why the processes cannot start; printed as is, exit status 2."""


def haproxy_binary() -> str | None:
    found = shutil.which("haproxy")
    if found:
        return found
    return "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM when the process that started it dies, so
    nothing is left behind even if the launcher (or a test) is killed outright."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def max_connections() -> int:
    """What haproxy may hold open: two descriptors a connection, within this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return max(256, min(10_000, (limit - 200) // 2))


# Requests a process works on at once, behind haproxy; as many again per process may wait
# in haproxy's queue (deploy/haproxy/ether.cfg.in).
PER_PROCESS = 64


def render_config(
    *, host: str, port: int, backends: list[int], stats_socket: Path, template: Path = TEMPLATE
) -> str:
    """The haproxy config of ``template`` for these ports (one ``server`` line each)."""
    servers = "\n".join(f"    server ether{n} 127.0.0.1:{p}" for n, p in enumerate(backends, 1))
    tracked = "\n".join(
        f"    server ether{n} 127.0.0.1:{p} track ether/ether{n}" for n, p in enumerate(backends, 1)
    )
    fallback = "\n".join(
        f"    server fallback{n} 127.0.0.1:{p} backup no-check" for n, p in enumerate(backends, 1)
    )
    return Template(template.read_text()).substitute(
        fallback=fallback,
        bind=f"{host}:{port}",
        maxconn=max_connections(),
        per_process=PER_PROCESS,
        queued=PER_PROCESS * len(backends),
        stats_socket=str(stats_socket),
        servers=servers,
        tracked=tracked,
    )


def check_stores(env: dict[str, str]) -> None:
    """Postgres and Redis configured and answering, else ``Refused`` saying what to do."""
    database, redis_url = env.get("DATABASE_URL", ""), env.get("REDIS_URL", "")
    if not database.startswith(("postgres://", "postgresql://")) or not redis_url:
        raise Refused(
            "More than one process needs Postgres and Redis: SQLite has a single writer "
            "and the in-memory channel layer keeps each process's events to itself.\n"
            f"  DATABASE_URL={database or '(unset)'}  REDIS_URL={redis_url or '(unset)'}\n"
            "With this machine's Postgres and Redis (docs/deploy.md):\n"
            f"  make run WORKERS=N {LOCAL_URLS}"
        )
    import psycopg
    import redis

    try:
        psycopg.connect(database, connect_timeout=5).close()
    except psycopg.Error as error:
        raise Refused(f"Postgres at DATABASE_URL does not answer: {error}".strip()) from error
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except redis.RedisError as error:
        raise Refused(f"Redis at REDIS_URL does not answer: {error}") from error


class Cluster:
    """The processes of one run: workers, N daphne, haproxy; stopped together."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str]) -> None:
        self.args = args
        self.env = env
        self.var = Path(args.var).resolve()
        self.state_dir = self.var / "cluster"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.backends: list[int] = []

    def spawn(self, name: str, command: list[str], sink: Path | None = None) -> None:
        """Starts ``command``; its output goes to ``sink`` or, prefixed, to stdout."""
        out: IO[bytes] | int = sink.open("ab") if sink else subprocess.PIPE
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group: Ctrl-C reaches the launcher only, which stops the
            # processes in order (haproxy first).
            process_group=0,
            preexec_fn=die_with_parent,
        )
        if sink is None:
            threading.Thread(target=_relay, args=(name, process.stdout), daemon=True).start()
        else:
            out.close()  # type: ignore[union-attr]
        self.processes[name] = process

    def start(self) -> None:
        py = sys.executable
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "state.json").unlink(missing_ok=True)
        if not self.args.no_workers:
            for worker, log in WORKERS.items():
                self.spawn(worker, [py, "manage.py", worker], self.var / log)
        self.backends = [free_port() for _ in range(self.args.workers)]
        for port in self.backends:
            # As `make run` and deploy/systemd/ether@.service: daphne with secrets redacted
            # from its access log, no --http-timeout (it would cut SSE), idle WebSockets for
            # 24 h, the client address from haproxy's X-Forwarded-For.
            command = [py, "-m", "ether_site.serve", "-b", "127.0.0.1", "-p", str(port)]
            command += ["--proxy-headers", "--websocket_timeout", "86400", "--no-server-name"]
            command += [*self.args.daphne_args, "ether_site.asgi:application"]
            self.spawn(f"ether@{port}", command)
        for port in self.backends:
            self.wait_ready(f"http://127.0.0.1:{port}/readyz", f"ether@{port}")
        config = self.state_dir / "haproxy.cfg"
        config.write_text(
            render_config(
                host=self.args.bind,
                port=self.args.port,
                backends=self.backends,
                stats_socket=self.state_dir / "haproxy.sock",
            )
        )
        binary = haproxy_binary()
        assert binary is not None
        checked = subprocess.run([binary, "-c", "-q", "-f", str(config)], capture_output=True)
        if checked.returncode != 0:
            raise Refused(f"haproxy rejects {config}:\n{checked.stderr.decode(errors='replace')}")
        self.spawn("haproxy", [binary, "-db", "-f", str(config)])
        self.wait_ready(f"http://{self.args.bind}:{self.args.port}/readyz", "haproxy")
        state = {
            "url": f"http://{self.args.bind}:{self.args.port}",
            "backends": self.backends,
            "pids": {name: p.pid for name, p in self.processes.items()},
            "config": str(config),
            "stats_socket": str(self.state_dir / "haproxy.sock"),
        }
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    def wait_ready(self, url: str, name: str, timeout: float = 90.0) -> None:
        """Until ``url`` answers 200, or fails if a process exits meanwhile."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=3) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = f"{error.code} {error.read()[:300]!r}"
            except OSError as error:
                last = str(error)
            time.sleep(0.2)
        raise Refused(f"{name} is not ready after {timeout:.0f} s ({url}: {last})")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                raise Refused(f"{name} exited (status {code}); stopping the others")

    def stop(self) -> None:
        # The load balancer first (no new requests), then the servers, then the workers.
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def banner(self) -> str:
        url = f"http://{self.args.bind}:{self.args.port}"
        backends = ", ".join(f"127.0.0.1:{p}" for p in self.backends)
        workers = "none (--no-workers)" if self.args.no_workers else ", ".join(WORKERS)
        return (
            f"\nEther: {len(self.backends)} daphne processes behind haproxy at {url}\n"
            f"  open        {url}/tasks/  (pages)   {url}/api/docs/  (API)   {url}/admin/\n"
            f"  processes   {backends} (each also answers directly)\n"
            f"  haproxy     {self.state_dir / 'haproxy.cfg'} (from {_short(TEMPLATE)}); "
            "a process gets traffic while GET /readyz answers 200\n"
            f"  workers     {workers}: once, logs in {_short(self.var)}/\n"
            f"  metrics     GET /metrics on any process adds up every process "
            f"({self.env.get('PROMETHEUS_MULTIPROC_DIR') or 'PROMETHEUS_MULTIPROC_DIR unset'})\n"
            "Ctrl-C stops them all.\n"
        )


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _relay(name: str, stream: IO[bytes] | None) -> None:
    """A child's output on this terminal, each line prefixed with the process's name."""
    assert stream is not None
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"[{name}] {line.decode(errors='replace')}")
        sys.stdout.flush()


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ether_site.cluster", description=__doc__)
    parser.add_argument("--workers", type=int, required=True, help="daphne processes (2+)")
    parser.add_argument("-b", "--bind", default="127.0.0.1", help="haproxy's address")
    parser.add_argument("-p", "--port", type=int, default=8080, help="haproxy's port")
    parser.add_argument("--var", default=str(ROOT / "var"), help="logs and generated files")
    parser.add_argument("--no-setup", action="store_true", help="skip migrate and seed_demo")
    parser.add_argument("--no-workers", action="store_true", help="start no background worker")
    parser.add_argument(
        "--daphne-arg", dest="daphne_args", action="append", default=[], help="e.g. -v0"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    env = dict(os.environ)
    # If whatever started this launcher (make, a test) dies, this one stops too, and
    # with it everything it started.
    die_with_parent()
    try:
        if args.workers < 2:
            raise Refused("--workers must be 2 or more (one process: plain `make run`)")
        if haproxy_binary() is None:
            raise Refused("haproxy is not installed: apt-get install haproxy")
        check_stores(env)
    except Refused as refused:
        print(f"make run WORKERS={args.workers}: {refused}", file=sys.stderr)
        return 2
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # One directory for every process, empty at the start: counters start at zero.
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        for stale in Path(metrics_dir).glob("*.db"):
            stale.unlink()
    Path(args.var).mkdir(parents=True, exist_ok=True)
    if not args.no_setup:
        _manage(env, "migrate", "--no-input", "-v0")
        _manage(env, "seed_demo", "--base-url", f"http://{args.bind}:{args.port}")
    cluster = Cluster(args, env)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    try:
        cluster.start()
        print(cluster.banner(), flush=True)
        while not stopping.wait(0.5):
            cluster.check_alive()
    except Refused as refused:
        print(f"make run WORKERS={args.workers}: {refused}", file=sys.stderr)
        status = 1
    finally:
        cluster.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
