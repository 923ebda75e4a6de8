"""Workers as Ray actors across a cluster (fuzz/search/transport.py): ``--cluster``.

The ``cowfuzz fuzz`` process stays the coordinator: it connects to the
cluster as a Ray driver and is still the only writer of the corpus, campaign
and crash folders. It starts one long-lived actor per CPU of the cluster
(``num_cpus=1`` each, so Ray spreads them over the nodes); each actor holds
a ``SliceRunner`` (fuzz/search/worker.py) for the campaign's life and runs
the slices it is sent -- the same requests and results as a local worker,
with corpus entries sent by cursor and known by content hash.

Two kinds of call, in two concurrency groups: ``run`` (one slice at a time,
in the actor's slice thread) and the ``control`` group, served while a slice
runs: ``progress`` (the heartbeat, polled about once a second) and
``stop_slice`` (what SIGTERM is to a local worker).

Failures. An actor whose process or node dies is restarted by Ray
(``max_restarts=-1``), where a CPU is free, with nothing of its old state:
the slice it was running is lost (the coordinator says so and resends the
whole corpus with the next one). While it is restarting -- a lost node's
actor waits for a CPU elsewhere -- its next slice waits here, and the actor
is pinged every ``RETRY_SECONDS`` until it answers. A finding ends the slice
that found it, so it comes back with the result, within moments; the
coordinator journals it (campaigns/<variant>/found/) the moment the result
arrives, so a coordinator killed before saving it saves it next time.
Nothing a worker reported is lost with its node.

Every node must have the same cowfuzz installed (the actors check the model
version), and a design of the user's (``file.py:Class``) at the same path.
The actors die with the coordinator (Ray ends a driver's actors when the
driver goes); their scratch folders are temporary folders on their nodes.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, replace

from fuzz.search.session import Heartbeat, SliceResult
from fuzz.search.transport import Lost
from fuzz.search.worker import Journal

#: seconds between pings of an actor that is restarting
RETRY_SECONDS = 2.0
#: seconds between heartbeat polls of a running slice
PROGRESS_SECONDS = 1.0
#: the longest ``wait`` blocks in Ray at a time (the stop signal is checked between)
WAIT_STEP = 0.25

INSTALL_HINT = "--cluster needs Ray: pip install 'cowfuzz[ray]'"


class ClusterError(Exception):
    """The cluster cannot be used (Ray missing, unreachable, no CPU, mismatched nodes); str()
    is one line."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


_ACTOR = None


def _actor_class():
    """The actor class, defined once Ray is imported (Ray is an optional extra)."""
    global _ACTOR
    if _ACTOR is not None:
        return _ACTOR
    ray = _ray()

    @ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0,
                concurrency_groups={"control": 1})
    class SliceActor:
        def __init__(self, slot: int, variant: str, designs: tuple):
            from fuzz.search.worker import SliceRunner
            self.workdir = tempfile.mkdtemp(prefix=f"cowfuzz-actor{slot}-")
            self.runner = SliceRunner(slot, variant, designs, self.workdir)
            self.beat = Heartbeat(slot, 0, 0)
            self.runner.session.on_heartbeat = self._on_beat

        def _on_beat(self, beat) -> None:
            self.beat = replace(beat, slot=self.runner.slot)

        def hello(self) -> tuple:
            import os
            import socket

            from fuzz.program.replay_token import model_version
            return socket.gethostname(), ray.util.get_node_ip_address(), os.getpid(), \
                model_version()

        def run(self, request) -> SliceResult:
            self.runner.session.stopping = False
            self.beat = Heartbeat(request.slot, request.slice_no, 0,
                                  self.runner.session.replayed)
            return self.runner.run(request)

        @ray.method(concurrency_group="control")
        def progress(self) -> Heartbeat:
            return self.beat

        @ray.method(concurrency_group="control")
        def stop_slice(self) -> None:
            self.runner.session.stopping = True

        def close(self) -> None:
            self.runner.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    _ACTOR = SliceActor
    return _ACTOR


@dataclass
class _Actor:
    handle: object
    where: str = "?"
    pid: int = 0
    pending: object = None            # the request to send once the actor answers again
    running: object = None            # ObjectRef of the slice in flight
    request: object = None            # ... and its request (for the journal)
    ping: object = None               # ObjectRef of a ping to a restarting actor
    ping_at: float = 0.0
    progress: object = None           # ObjectRef of a heartbeat poll
    progress_at: float = 0.0


class RayWorkers:
    def __init__(self, address: str, jobs: int | None, variant: str, designs: tuple, folder):
        ray = _ray()
        self.ray = ray
        self.folder = folder
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=True)
        except Exception as exc:             # ConnectionError, ValueError, RuntimeError...
            raise ClusterError(f"--cluster {address}: cannot connect to the Ray cluster: "
                               f"{' '.join(str(exc).split())[:300]}") from None
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.count = jobs or cpus
        if self.count <= 0:
            ray.shutdown()
            raise ClusterError(f"--cluster {address}: the cluster has no CPU for a worker")
        cls = _actor_class()
        self.actors = [_Actor(cls.remote(i, variant, designs)) for i in range(self.count)]
        self.outbox: list = []                # messages to return from the next wait
        self._check_nodes()

    def _check_nodes(self) -> None:
        from fuzz.program.replay_token import model_version
        mine = model_version()
        try:
            answers = self.ray.get([a.handle.hello.remote() for a in self.actors], timeout=300)
        except Exception as exc:
            self.kill()
            raise ClusterError(f"the cluster's workers did not start: "
                               f"{' '.join(str(exc).split())[:300]}") from None
        for actor, (host, ip, pid, version) in zip(self.actors, answers):
            actor.where, actor.pid = ip, pid
            if version != mine:
                self.kill()
                raise ClusterError(f"node {ip} ({host}) runs model {version}, this is {mine}: "
                                   "install the same cowfuzz on every machine")

    def describe(self) -> str:
        nodes = sorted({a.where for a in self.actors})
        return f"{self.count} Ray actor(s) on {len(nodes)} node(s) ({', '.join(nodes)})"

    def start(self, slot: int) -> None:
        """Ray restarts a lost actor itself; ping it before its next slice."""
        actor = self.actors[slot]
        actor.ping, actor.ping_at = None, 0.0

    def send(self, slot: int, request) -> bool:
        actor = self.actors[slot]
        actor.pending = request
        if actor.ping_at == 0.0:              # not known to be restarting: send it now
            self._send(actor)
        return True

    def _send(self, actor: _Actor) -> None:
        actor.request, actor.pending = actor.pending, None
        actor.running = actor.handle.run.remote(actor.request)
        actor.progress, actor.progress_at = None, time.monotonic() + PROGRESS_SECONDS

    def wait(self, busy, timeout, waitables):
        ray = self.ray
        deadline = time.monotonic() + timeout
        messages, self.outbox = self.outbox, []
        while True:
            now = time.monotonic()
            refs = {}
            for slot in busy:
                actor = self.actors[slot]
                if actor.running is not None:
                    refs[actor.running] = (slot, "run")
                    if actor.progress is None and now >= actor.progress_at:
                        actor.progress = actor.handle.progress.remote()
                    if actor.progress is not None:
                        refs[actor.progress] = (slot, "progress")
                elif actor.pending is not None:
                    if actor.ping is None and now >= actor.ping_at:
                        actor.ping = actor.handle.hello.remote()
                    if actor.ping is not None:
                        refs[actor.ping] = (slot, "ping")
            step = max(0.0, min(WAIT_STEP, deadline - now))
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=step) if refs else ([], [])
            if ready:
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
            for ref in ready:
                slot, kind = refs[ref]
                message = self._collect(slot, kind, ref)
                if message is not None:
                    messages.append(message)
            if messages or time.monotonic() >= deadline or _any_ready(waitables):
                return messages

    def _collect(self, slot: int, kind: str, ref):
        actor = self.actors[slot]
        try:
            value = self.ray.get(ref)
        except Exception as exc:              # the actor or its node died
            why = " ".join(str(exc).split())[:200]
            if kind == "progress":
                actor.progress = None
                return None
            if kind == "ping":                # still restarting: try again later
                actor.ping, actor.ping_at = None, time.monotonic() + RETRY_SECONDS
                return None
            actor.running = actor.progress = None
            actor.ping_at = time.monotonic()  # ping it before the next slice
            return Lost(slot, f"on {actor.where} was lost ({type(exc).__name__}: {why})")
        if kind == "progress":
            actor.progress, actor.progress_at = None, time.monotonic() + PROGRESS_SECONDS
            return value if actor.running is not None else None
        if kind == "ping":
            host, ip, pid, _version = value
            actor.ping, actor.ping_at = None, 0.0
            actor.where, actor.pid = ip, pid
            self._send(actor)
            return None
        actor.running = actor.progress = None
        result: SliceResult = value
        if result.found:                      # journaled here: the worker's disk may be gone
            journal = Journal(str(self.folder.journal(slot)), slot)
            for found in result.found:
                journal.write(found, actor.request)
        return result

    def stop_slices(self, busy) -> None:
        for slot in busy:
            actor = self.actors[slot]
            if actor.running is not None:
                actor.handle.stop_slice.remote()
            elif actor.pending is not None:   # still restarting: its slice is not sent
                actor.pending = None
                self.outbox.append(Lost(slot, "was restarting", quiet=True))

    def stop(self, grace: float) -> None:
        refs = [a.handle.close.remote() for a in self.actors]
        try:
            self.ray.wait(refs, num_returns=len(refs), timeout=grace)
        except Exception:
            pass
        self.kill()

    def kill(self) -> None:
        for actor in getattr(self, "actors", []):
            try:
                self.ray.kill(actor.handle)
            except Exception:
                pass
        self.actors = []
        if self.ray.is_initialized():
            self.ray.shutdown()


def _any_ready(waitables) -> bool:
    if not waitables:
        return False
    import select
    return bool(select.select(waitables, [], [], 0)[0])
