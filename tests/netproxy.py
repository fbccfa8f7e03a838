"""Loopback proxies for the service's tests and benchmarks, each an asyncio loop in a thread of
its own:

- Balancer: an HTTP load balancer modelled on an AWS ALB target group (health checks,
  deregistration, 502 for a target that does not answer), in front of replicas of the service;
- FaultProxy: a TCP proxy between the service and PostgreSQL that adds latency to what the
  service sends, or turns every connection dead, while it runs.

Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HEAD_LIMIT = 65_536
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
NO_TARGET = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
             b"Connection: close\r\n\r\n")


class _LoopThread:
    """An asyncio loop running in a daemon thread; `run` calls a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_all() -> None:
            # Until none is left: a cancelled task's cleanup may have started others.
            while tasks := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class _Listener:
    """A proxy's listening socket on 127.0.0.1 and the loop thread serving it; a context
    manager that closes both."""

    def _listen(self) -> None:
        self._loop = _LoopThread()
        self._server = self._loop.run(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._server.close()
        self._loop.stop()

    def __enter__(self):  # noqa: ANN204 - the subclass
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay: Callable[[], float] = lambda: 0.0, on_data: Callable[[], None] = lambda: None,
                gate: Callable[[], bool] = lambda: True) -> None:
    """Copy until EOF. Each chunk leaves `delay()` seconds (read when it arrives) after it
    arrived, whatever came before it (netem's delay: every packet held for the same time, not
    one after another); a chunk that arrives while `gate()` is false is swallowed, and so is
    everything after it (the connection is dead)."""
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def send() -> None:
        loop = asyncio.get_running_loop()
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.get_running_loop().create_task(send())
    dead = False
    try:
        while data := await reader.read(65_536):
            dead = dead or not gate()
            if dead:
                continue
            on_data()
            queue.put_nowait((asyncio.get_running_loop().time() + delay(), data))
        queue.put_nowait(None)
        await sender
    finally:
        sender.cancel()


async def _request(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP request (head and a Content-Length body), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    return head + (await reader.readexactly(length) if length else b"")


@dataclass
class Target:
    """One registered replica, as the target group sees it."""

    host: str
    port: int
    state: str = "initial"  # initial -> healthy <-> unhealthy, by its health checks
    draining: bool = False  # deregistered: health checks stop, its state stays as it was
    passes: int = 0
    failures: int = 0
    routable_until: float | None = None  # set at deregistration: no new requests after it
    routed: int = 0
    in_flight: set[asyncio.Task] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


class Balancer(_Listener):
    """An ALB-like load balancer for replicas that answer one request per connection (the
    service speaks HTTP/1.0): each client connection's request goes to the next routable
    target, round robin. Modelled on a target group with `target-type: ip`:

    - a registered target gets requests once `healthy_threshold` health checks in a row
      (GET /ready every `interval` s, 200 within `interval`) pass, and none while
      `unhealthy_threshold` in a row have failed; when no target is healthy, every registered
      one gets requests (the ALB fails open);
    - deregister(): the target still gets new requests for `propagation` s (the AWS Load
      Balancer Controller sees the pod leave the endpoints, the ALB applies it: the pod's
      SIGTERM is sent at the same moment, so a replica that stops accepting at once loses what
      arrives meanwhile), then none; requests in flight keep their connections for
      `deregistration_delay` s after deregister(), then are cut;
    - a target that refuses the connection, or closes it without an answer: 502 to the client,
      not retried (the ALB does not retry a request it has sent).
    `counts` tallies what it answered itself: "502", "503", "cut".
    """

    def __init__(self, interval: float = 0.5, healthy_threshold: int = 2,
                 unhealthy_threshold: int = 2, propagation: float = 2.0,
                 deregistration_delay: float = 10.0):
        self.interval = interval
        self.healthy_threshold = healthy_threshold
        self.unhealthy_threshold = unhealthy_threshold
        self.propagation = propagation
        self.deregistration_delay = deregistration_delay
        self.targets: list[Target] = []
        self.counts: Counter[str] = Counter()
        self._next = 0
        self._listen()
        self.url = f"http://127.0.0.1:{self.port}"

    # -- the target group -------------------------------------------------------------------
    def register(self, base_url: str) -> Target:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        target = Target(host, int(port))

        async def add() -> None:
            self.targets.append(target)
            asyncio.get_running_loop().create_task(self._health(target))

        self._loop.run(add())
        return target

    def deregister(self, target: Target) -> None:
        async def start() -> None:
            target.draining = True
            target.routable_until = time.monotonic() + self.propagation
            asyncio.get_running_loop().call_later(self.deregistration_delay, self._cut, target)

        self._loop.run(start())

    def wait_healthy(self, target: Target, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while target.state != "healthy":
            if time.monotonic() > deadline:
                raise TimeoutError(f"target {target.name} not healthy in {seconds:g} s")
            time.sleep(0.05)

    def _cut(self, target: Target) -> None:
        for task in list(target.in_flight):
            self.counts["cut"] += 1
            task.cancel()
        with contextlib.suppress(ValueError):
            self.targets.remove(target)

    async def _health(self, target: Target) -> None:
        while not target.draining:
            ok = False
            with contextlib.suppress(OSError, asyncio.TimeoutError, ValueError, IndexError):
                ok = await asyncio.wait_for(self._ready(target), self.interval)
            if target.draining:
                return
            if ok:
                target.passes, target.failures = target.passes + 1, 0
                if target.passes >= self.healthy_threshold:
                    target.state = "healthy"
            else:
                target.passes, target.failures = 0, target.failures + 1
                if target.failures >= self.unhealthy_threshold and target.state == "healthy":
                    target.state = "unhealthy"
            await asyncio.sleep(self.interval)

    @staticmethod
    async def _ready(target: Target) -> bool:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(b"GET /ready HTTP/1.1\r\nHost: health\r\nConnection: close\r\n\r\n")
            await writer.drain()
            status = (await reader.readline()).split()
            return len(status) > 1 and status[1] == b"200"
        finally:
            writer.close()

    def _pick(self) -> Target | None:
        now = time.monotonic()
        routable = [t for t in self.targets
                    if t.routable_until is None or now < t.routable_until]
        # Fail open: with no healthy target, every registered one gets requests.
        choices = [t for t in routable if t.state == "healthy"] or routable
        if not choices:
            return None
        self._next = (self._next + 1) % len(choices)
        return choices[self._next]

    # -- the listener ---------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _request(reader)
            if request is None:
                return
            target = self._pick()
            if target is None:
                self.counts["503"] += 1
                writer.write(NO_TARGET)
                await writer.drain()
                return
            target.routed += 1
            task = asyncio.current_task()
            target.in_flight.add(task)
            try:
                await self._forward(target, request, writer)
            finally:
                target.in_flight.discard(task)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass  # cancelled: cut at the deregistration delay, or the balancer closing
        finally:
            writer.close()

    async def _forward(self, target: Target, request: bytes,
                       writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(target.host, target.port)
        except OSError:
            self.counts["502"] += 1
            writer.write(BAD_GATEWAY)
            await writer.drain()
            return
        answered = False

        def seen() -> None:
            nonlocal answered
            answered = True

        try:
            upstream.write(request)
            await upstream.drain()
            await _pipe(upstream_reader, writer, on_data=seen)
        except OSError:
            pass
        finally:
            upstream.close()
        if not answered:
            self.counts["502"] += 1
            writer.write(BAD_GATEWAY)
            await writer.drain()



class FaultProxy(_Listener):
    """A TCP proxy to PostgreSQL (a Unix socket path or host:port), listening on 127.0.0.1,
    with faults switched while it runs:

    - `latency` (seconds): added before every chunk the client sends is forwarded, the way
      Chaos Mesh's NetworkChaos `delay` holds every packet the selected pod sends;
    - dead(): from now on nothing either way on the connections open now (their bytes are
      read and dropped, the kernel still acknowledges them: the client's TCP sees nothing wrong
      and only its own deadline can end the wait), and new connections are accepted and get the
      same; heal() lets new connections through again (the dead ones stay dead, as after a
      failover to a new address).
    """

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.latency = 0.0
        self.connections = 0
        self._alive_from = 0  # connections numbered below this are dead for good
        self._dead = False
        self._tasks: set[asyncio.Task] = set()
        self._listen()

    def dead(self) -> None:
        self._dead = True
        self._alive_from = self.connections + 1

    def heal(self) -> None:
        self._dead = False
        self._alive_from = self.connections + 1

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.startswith("/"):
            return await asyncio.open_unix_connection(self.upstream)
        host, port = self.upstream.rsplit(":", 1)
        return await asyncio.open_connection(host, int(port))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Held here until it ends: the loop keeps only weak references to tasks, and one whose
        # both sockets have gone quiet would be collected while pending (and said so on stderr).
        task = asyncio.current_task()
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        alive = lambda: not self._dead and number >= self._alive_from  # noqa: E731
        try:
            if not alive():
                while await reader.read(65_536):
                    pass  # a dead connection: read, never answered
                return
            upstream_reader, upstream = await self._open()
            try:
                await asyncio.gather(
                    _pipe(reader, upstream, delay=lambda: self.latency, gate=alive),
                    _pipe(upstream_reader, writer, gate=alive))
            finally:
                upstream.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # cancelled: the proxy closing (Python 3.11's server callback would log it)
        finally:
            writer.close()
            self._tasks.discard(task)

