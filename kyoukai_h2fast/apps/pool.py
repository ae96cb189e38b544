"""Where app code runs: the worker thread pool, the mailbox back to the event loop, and the
eager start of coroutine handlers.

* :class:`WorkerPool` runs WSGI handlers in daemon threads: a fixed number at once, fairly
  across connections, not counting those waiting for their client (:func:`blocking`, and
  :class:`Resumable` jobs parked between the chunks of a streaming response).
* :class:`Mailbox` carries results from worker threads to the loop with one wake-up per batch.
* :func:`start_eagerly` runs a Kyoukai-style handler until it first suspends, without a Task
  when it never does.

What runs and when (per connection fairness, timeouts) is decided by the runners in
:mod:`kyoukai_h2fast.apps.runners`; this module only executes.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

__all__ = ["WorkerPool", "Resumable", "Mailbox", "blocking", "start_eagerly"]

log = logging.getLogger("kyoukai_h2fast")


class WorkerPool:
    """Daemon threads running ``fn(*args)`` jobs: at most ``size`` at once, fairly across
    owners (connections), and without counting threads that wait for their client.

    * **Slots.** A job runs only while it holds one of ``size`` slots. A job waiting for
      request body bytes from its client (:func:`blocking`, used by ``wsgi.input``) gives its
      slot up for the wait, so clients that stall their uploads cannot starve the others; such
      waits are bounded by the body timeout, and threads by ``max_threads``.
    * **Parking.** A job that has more work to do later, when the event loop asks (a streaming
      response: the next chunk once the client took the last), parks (:meth:`Resumable.park`):
      it keeps its thread but gives its slot up. :meth:`Resumable.resume` gives it a slot
      again, in its owner's turn like a new job, and wakes it on the same thread;
      :meth:`Resumable.stop` wakes it at once, without a slot, to clean up and return. A
      parked job keeps its thread for as long as its client makes it wait: threads are
      bounded by ``max_threads``, and beyond that new jobs wait (without a slot) for a
      thread to come free. One owner's jobs occupy at most half of ``max_threads`` threads
      (running or waiting for their client), so one connection whose client reads nothing
      cannot take them all; its further jobs wait for its own to end. A parked job resumed
      goes ahead of its owner's new jobs.
    * **Fairness.** Jobs that wait for a slot queue per owner, and a freed slot goes to the
      owners in turn (round-robin), so one connection with a hundred requests queued does not
      delay another connection's one. ``per_owner`` (0: no limit) caps the slots one owner
      holds at once.
    * **Threads** start on demand (a burst of N jobs runs on N threads as soon as they start)
      and those beyond ``size`` exit after a while idle; they are daemons, so a handler stuck
      past the shutdown timeout cannot keep the process alive. No Future per job: results
      travel back through a :class:`Mailbox`.
    * **Hand-off.** Jobs that may start queue for a thread; one sleeping thread at a time is
      woken for them (:meth:`_signal`), and jobs submitted on the event loop's thread wake it
      once the loop's turn is over (:meth:`_signal_soon`), so a burst costs a wake-up or two,
      not one per job. Threads sleep on a :class:`_Bell`.

    Jobs have a ``kind`` (``"app"`` for app code that may take long; any other kind, such as
    ``"close"`` for cleanup, needs no slot), so shutdown can say truthfully what it abandons.
    """

    #: Seconds an extra thread (beyond ``size``) stays idle before it exits.
    IDLE_EXIT = 10.0
    #: A job handed to the threads and not picked up for this long (seconds) makes
    #: :meth:`hand_over` pause the loop's thread.
    HAND_OVER_AFTER = 0.002
    #: How long that pause lasts at most (seconds); it ends when a thread picks a job up.
    HAND_OVER_PAUSE = 0.001

    def __init__(self, size: int, name: str, per_owner: int = 0,
                 max_threads: int = 0,
                 loop: asyncio.AbstractEventLoop | None = None,
                 mailbox: Mailbox | None = None) -> None:
        self._size = size
        self._name = name
        self._per_owner = per_owner
        self._max_threads = max_threads or size + max(32, 4 * size)
        #: Threads one owner's jobs may occupy at once (running, or waiting for its client).
        self._owner_threads = max(1, self._max_threads // 2)
        #: Jobs holding a slot (or needing none), waiting for a thread to take them.
        self._ready: deque = deque()
        #: The bells of the threads asleep for want of work, the last to sleep last.
        self._sleepers: list[_Bell] = []
        #: A bell to ring once the lock is released (see :meth:`_signal`).
        self._bell_out: _Bell | None = None
        #: Threads woken (or started) to take ready jobs that have not taken one yet.
        self._searching = 0
        #: Jobs submitted on the event loop's thread wake a thread once the loop has handled
        #: everything ready in its turn (one wake-up per batch, see :meth:`_signal_soon`).
        self._loop = loop
        self._loop_thread = threading.get_ident() if loop is not None else None
        self._signal_pending = False
        #: Where the jobs post their results (see :meth:`_signal_soon`).
        self._mailbox = mailbox
        self._threads = 0
        self._serial = 0
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._idle = 0
        #: Slots held (by running jobs not waiting for their client).
        self._held = 0
        #: Jobs handed to threads and not finished, by kind.
        self._running: dict[str, int] = {}
        #: Jobs waiting for a slot, per owner, owners in turn order.
        self._backlog: dict = {}
        #: Slots held per owner.
        self._owner_held: dict = {}
        #: Jobs per owner that hold a thread but no slot (waiting for their client, parked).
        self._owner_waiting: dict = {}
        self._closed = False
        #: When the job queue last went from empty to not empty (time.monotonic()).
        self._queued_since = 0.0
        #: Set by a thread that picks a job up while the loop's thread waits in hand_over.
        self._picked = threading.Event()
        self._handing_over = False
        #: Parked jobs woken to go on whose thread has not run yet (for hand_over).
        self._woken: set[Resumable] = set()

    @property
    def size(self) -> int:
        return self._size

    def submit(self, fn: Callable[..., object], *args: Any, kind: str = "app",
               owner: object = None) -> None:
        """Run ``fn(*args)``: now if a slot is free (``"close"`` jobs always), else when
        ``owner``'s turn comes."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        job = (fn, args, kind, owner)
        with self._lock:
            if kind != "app":
                self._start(job)
            elif self._held < self._size and self._owner_may_start(owner) and \
                    owner not in self._backlog and \
                    (self._idle or self._threads < self._max_threads):
                self._take_slot(owner)
                self._start(job)
            else:
                self._backlog.setdefault(owner, deque()).append(job)
            bell, self._bell_out = self._bell_out, None
        if bell is not None:
            bell.nudge()

    def hand_over(self) -> bool:
        """Called by the event loop's thread while it is busy: if a job has waited to be
        picked up for more than :attr:`HAND_OVER_AFTER`, block until a worker thread picks
        one up (at most :attr:`HAND_OVER_PAUSE`), which hands it the GIL. True if it paused.

        Why: a thread waiting for the GIL asks the holder to drop it only after a whole
        switch interval *without any switch*; uvloop releases and retakes the GIL around
        every I/O callback, which counts as a switch, so while the loop is saturated (a
        flood of frames, many busy connections) a woken worker can wait for hundreds of
        milliseconds. A short blocking pause hands the GIL over for certain.
        """
        if (not self._ready and not self._woken) or \
                time.monotonic() - self._queued_since < self.HAND_OVER_AFTER:
            return False
        picked = self._picked
        picked.clear()
        self._handing_over = True
        try:
            if self._signal_pending:  # the jobs of this turn wait for their wake-up: now
                with self._lock:
                    if self._ready:
                        self._signal()
                    bell, self._bell_out = self._bell_out, None
                if bell is not None:
                    bell.ring()
            picked.wait(self.HAND_OVER_PAUSE)
        finally:
            self._handing_over = False
        return True

    def forget(self, owner: object) -> list:
        """Drop ``owner``'s jobs still waiting for a slot; returns them. (Its parked jobs
        waiting for their turn stay: they are stopped one by one, :meth:`Resumable.stop`.)"""
        with self._lock:
            waiting = self._backlog.pop(owner, None)
            if not waiting:
                return []
            parked = deque(entry for entry in waiting if type(entry) is Resumable)
            if parked:
                self._backlog[owner] = parked
            return [entry for entry in waiting if type(entry) is not Resumable]

    # -- parked jobs (through their Resumable) ----------------------------------------------
    def _park(self, job: Resumable) -> bool:
        with self._lock:
            owner = job.owner
            job._slot = False
            stopped = job._state == _STOPPED
            if not stopped:
                job._state = _WAITING
                self._wait_begins(owner)
            self._give_slot(owner)  # (admits others first)
            if not stopped and job._wanted:
                job._wanted = False
                self._resume(job)
            bell, self._bell_out = self._bell_out, None
        if bell is not None:
            bell.nudge()
        if stopped:
            _current.owner = _NO_SLOT
            return False
        job._wake.acquire()
        if self._handing_over:
            self._picked.set()
        if job._slot:  # resumed (if stopped since, it sees that when it parks again)
            self._woken.discard(job)
            return True
        _current.owner = _NO_SLOT
        return False

    def _resume_parked(self, job: Resumable) -> None:
        with self._lock:
            state = job._state
            if state == _RUNNING:
                job._wanted = True
            elif state == _WAITING:
                if self._closed:  # shut down: it only cleans up
                    self._stop(job)
                else:
                    self._resume(job)

    def _stop_parked(self, job: Resumable) -> None:
        with self._lock:
            self._stop(job)

    # -- inside the lock ------------------------------------------------------------------
    def _resume(self, job: Resumable) -> None:
        owner = job.owner
        waiting = self._backlog.get(owner)
        if self._held < self._size and self._owner_may_run(owner) and \
                (waiting is None or type(waiting[0]) is tuple):
            self._take_slot(owner)
            self._wake(job)
            return
        job._state = _QUEUED
        if waiting is None:
            self._backlog[owner] = deque((job,))
            return
        # Ahead of the owner's new jobs (after its other resumes): a new job may wait for
        # a thread that only a parked job's end frees.
        ahead = 0
        for entry in waiting:
            if type(entry) is tuple:
                break
            ahead += 1
        waiting.insert(ahead, job)

    def _wake(self, job: Resumable) -> None:
        """Hand a parked job (holding a slot now) back to its thread."""
        job._state = _RUNNING
        self._wait_ends(job.owner)
        job._slot = True
        if not self._woken and not self._ready:
            self._queued_since = time.monotonic()
        self._woken.add(job)
        job._wake.release()

    def _stop(self, job: Resumable) -> None:
        state = job._state
        if state == _STOPPED:
            return
        job._state = _STOPPED
        if state == _RUNNING:
            return  # it sees that when it parks
        if state == _QUEUED:
            waiting = self._backlog.get(job.owner)
            if waiting is not None and job in waiting:
                waiting.remove(job)
                if not waiting:
                    del self._backlog[job.owner]
        self._wait_ends(job.owner)
        job._wake.release()  # (no slot: it only cleans up)

    def _owner_may_run(self, owner: object) -> bool:
        """``owner`` may take one more slot (``per_owner``)."""
        return not self._per_owner or self._owner_held.get(owner, 0) < self._per_owner

    def _owner_may_start(self, owner: object) -> bool:
        """... and one more thread: one owner (a connection whose client reads nothing, say)
        never occupies more than half of ``max_threads``."""
        return self._owner_may_run(owner) and (
            not self._owner_waiting or self._owner_held.get(owner, 0)
            + self._owner_waiting.get(owner, 0) < self._owner_threads)

    def _wait_begins(self, owner: object) -> None:
        self._owner_waiting[owner] = self._owner_waiting.get(owner, 0) + 1

    def _wait_ends(self, owner: object) -> None:
        left = self._owner_waiting[owner] - 1
        if left:
            self._owner_waiting[owner] = left
        else:
            del self._owner_waiting[owner]

    def _take_slot(self, owner: object) -> None:
        self._held += 1
        self._owner_held[owner] = self._owner_held.get(owner, 0) + 1

    def _give_slot(self, owner: object) -> None:
        self._held -= 1
        left = self._owner_held[owner] - 1
        if left:
            self._owner_held[owner] = left
        else:
            del self._owner_held[owner]
        self._admit()

    def _admit(self) -> None:
        """Hand free slots to waiting jobs, one owner after another. A new job needs a thread
        too (a parked job has its own): while every thread is taken, a slot never goes to a
        job no thread can run (parked jobs waiting for their turn would wait for it, and it
        for their threads)."""
        backlog = self._backlog
        while backlog and self._held < self._size:
            thread_free = self._idle or self._threads < self._max_threads
            for owner, jobs in backlog.items():
                if (thread_free and self._owner_may_start(owner)) if type(jobs[0]) is tuple \
                        else self._owner_may_run(owner):  # (a parked job has its thread)
                    break
            else:
                return  # every waiting owner is at a cap, or waits for a thread
            jobs = backlog.pop(owner)
            job = jobs.popleft()
            if jobs:
                backlog[owner] = jobs  # to the end of the turn order
            self._take_slot(owner)
            if type(job) is tuple:
                self._start(job)
            else:  # a parked job's turn to go on
                self._wake(job)

    def _start(self, job: tuple) -> None:
        kind = job[2]
        self._running[kind] = self._running.get(kind, 0) + 1
        ready = self._ready
        if not ready:
            self._queued_since = time.monotonic()
        ready.append(job)
        if self._idle:
            self._idle -= 1  # a thread is as good as taken
        elif self._threads < self._max_threads:
            self._threads += 1
            self._serial += 1
            self._searching += 1
            threading.Thread(target=self._work, daemon=True,
                             name=f"{self._name}-{self._serial}").start()
            return
        if self._loop_thread is not None and threading.get_ident() == self._loop_thread:
            if not self._signal_pending and not self._searching and self._sleepers:
                self._signal_pending = True
                self._loop.call_soon(self._signal_soon)  # type: ignore[union-attr]
        else:
            self._signal()

    def _signal_soon(self) -> None:
        """On the loop, once the jobs of its turn are submitted: wake one thread for them
        (waking it at the first job would only make it wait for the GIL the loop holds).

        On one core the woken thread runs before the loop goes on (see :class:`_Bell`): by
        the time the bell has rung, the jobs of a short batch are done and their results
        posted. So the loop takes them from the mailbox at once, and the posts need not wake
        it (the mailbox counts as scheduled meanwhile): a batch costs two context switches
        and no other wake-up. Elsewhere the drain finds nothing yet, and the posts that come
        after it wake the loop as usual."""
        with self._lock:
            self._signal_pending = False
            if self._ready:
                self._signal()
            bell, self._bell_out = self._bell_out, None
        if bell is not None:
            mailbox = self._mailbox
            if mailbox is None:
                bell.ring()
                return
            mailbox._scheduled = True
            bell.ring()
            mailbox._drain()

    def _signal(self) -> None:
        """Ready jobs wait: make sure one thread is on its way to take them. One woken thread
        at a time: the one that takes a job wakes the next if jobs are left (so a job that
        blocks never holds the others up), and a thread that ends a job takes the next ready
        one before it sleeps; a burst of jobs thus wakes threads one after another as they
        are needed, not one per job (each wake-up is a context switch and a GIL hand-over).

        Inside the lock: the bell to ring is left in :attr:`_bell_out`, which whoever holds
        the lock takes before releasing it and rings after, so the woken thread finds the
        lock free (and, with an eventfd bell, the GIL): every ``with self._lock`` block that
        may start a job ends so."""
        if not self._searching and self._sleepers:
            self._searching = 1
            self._bell_out = self._sleepers.pop()

    def _next(self, wake: _Bell) -> tuple | None:
        """A thread's next job: the first ready one, else None (the thread is then listed
        to be woken with ``wake``). Inside the lock."""
        ready = self._ready
        if ready:
            job = ready.popleft()
            if ready:
                self._signal()
            if self._handing_over:
                self._picked.set()
            return job
        if self._closed:
            return _EXIT
        self._sleepers.append(wake)
        return None

    # -- worker threads -------------------------------------------------------------------
    def _work(self) -> None:
        _current.pool = self
        wake = _Bell()
        try:
            self._serve_jobs(wake)
        finally:
            wake.close()

    def _serve_jobs(self, wake: _Bell) -> None:
        lock = self._lock
        with lock:
            self._searching -= 1
            job = self._next(wake)
            bell, self._bell_out = self._bell_out, None
        while True:
            if bell is not None:  # (the next thread, for the jobs left: it runs them if
                bell.nudge()      # this one's job gives the GIL up, or ends and sleeps)
            if job is None:  # asleep until a job is ready
                if not wake.wait(self.IDLE_EXIT if self._threads > self._size else None):
                    with lock:
                        if wake in self._sleepers:  # not woken meanwhile
                            if self._threads > self._size and self._idle > 0:
                                self._sleepers.remove(wake)
                                self._threads -= 1
                                self._idle -= 1
                                return
                            bell = None
                            continue
                    wake.wait(None)  # (woken as it timed out: it rings at once)
                with lock:
                    self._searching -= 1
                    job = self._next(wake)
                    bell, self._bell_out = self._bell_out, None
                continue
            if job is _EXIT:
                return
            fn, args, kind, owner = job
            _current.owner = owner if kind == "app" else _NO_SLOT
            try:
                fn(*args)
            except BaseException:  # jobs handle their errors; this is the last resort
                log.exception("unhandled error in a WSGI worker thread")
            # An idle thread must not keep its last job's arguments (a closed app
            # iterable, a request's state) alive until its next job.
            job = fn = args = None
            with lock:
                self._running[kind] -= 1
                self._idle += 1
                if _current.owner is not _NO_SLOT:  # (a stopped parked job has none)
                    self._give_slot(owner)
                elif self._backlog:
                    self._admit()  # a thread came free
                if not self._backlog and not any(self._running.values()):
                    self._drained.notify_all()
                owner = None
                job = self._next(wake)
                bell, self._bell_out = self._bell_out, None

    def _begin_wait(self) -> None:
        owner = _current.owner
        if owner is not _NO_SLOT:
            with self._lock:
                self._wait_begins(owner)
                self._give_slot(owner)
                bell, self._bell_out = self._bell_out, None
            if bell is not None:
                bell.ring()

    def _end_wait(self) -> None:
        owner = _current.owner
        if owner is not _NO_SLOT:
            with self._lock:
                self._wait_ends(owner)
                self._take_slot(owner)  # may exceed size for a moment: the job must go on

    # -- state ----------------------------------------------------------------------------
    @property
    def busy(self) -> int:
        """Jobs running now (waiting for their client included)."""
        with self._lock:
            return sum(self._running.values())

    def running(self, kind: str = "app") -> int:
        """Jobs of ``kind`` running now."""
        with self._lock:
            return self._running.get(kind, 0)

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot (the queue depth)."""
        with self._lock:
            return sum(map(len, self._backlog.values()))

    def shutdown(self, timeout: float = 0.0) -> int:
        """Let running jobs finish for up to ``timeout`` seconds, then stop the idle
        threads; returns how many ``"app"`` jobs are still running (abandoned: the threads
        are daemons). Jobs still waiting for a slot are dropped; parked jobs waiting for
        their turn are stopped, and later resumes stop them too."""
        deadline = time.monotonic() + timeout
        with self._lock:
            for waiting in self._backlog.values():
                for entry in waiting:
                    if type(entry) is Resumable:
                        entry._state = _WAITING  # (out of the queue, which goes)
                        self._stop(entry)
            self._backlog.clear()
            while any(self._running.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._drained.wait(left)
            self._closed = True
            abandoned = self._running.get("app", 0)
            sleepers, self._sleepers = self._sleepers, []
            self._searching += len(sleepers)
            for wake in sleepers:  # (each sees _closed and ends)
                wake.ring()
        return abandoned


#: Per worker thread: the pool it belongs to and the owner of the job it runs (_NO_SLOT: the
#: job holds no slot).
_current = threading.local()
_NO_SLOT = object()
#: The job that tells a thread to end (the pool is shut down).
_EXIT = ("exit",)

class _Bell:
    """What a sleeping worker thread waits on. On Linux an eventfd: writing it releases the
    GIL for the system call, so the thread it wakes takes the GIL at once instead of waking
    only to wait for it (on one core, a woken thread runs before its waker goes on: with a
    lock it would find the GIL taken, sleep again, and cost two more context switches).
    Elsewhere a lock. Rung at most once per wait."""

    __slots__ = ("_fd", "_lock")

    def __init__(self) -> None:
        self._fd = -1
        self._lock: threading.Lock | None = None
        if _EVENTFD:
            self._fd = os.eventfd(0, os.EFD_CLOEXEC)
        else:
            self._lock = threading.Lock()
            self._lock.acquire()

    def ring(self) -> None:
        """Wake the thread and let it run now (from a thread that has nothing more to do
        at once: the loop at the end of its turn)."""
        if self._lock is None:
            os.eventfd_write(self._fd, 1)
        else:
            self._lock.release()

    def nudge(self) -> None:
        """Wake the thread, which runs when this one gives the GIL up (blocks, ends its
        jobs and sleeps, or after the switch interval): from a worker thread going on with
        a job. Handing the GIL over at once here would make every job of a burst run on a
        thread of its own, each taking the GIL from the others."""
        if self._lock is None:
            _write_holding_gil(self._fd, _ONE, 8)
        else:
            self._lock.release()

    def wait(self, timeout: float | None) -> bool:
        """Until rung (True) or ``timeout`` seconds (None: no limit) have passed (False)."""
        if self._lock is not None:
            return self._lock.acquire(timeout=-1 if timeout is None else timeout)
        if timeout is not None and not select.select((self._fd,), (), (), timeout)[0]:
            return False
        os.eventfd_read(self._fd)
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_EVENTFD = hasattr(os, "eventfd")
_ONE = (1).to_bytes(8, sys.byteorder)


def _load_write_holding_gil() -> Callable[[int, bytes, int], int]:
    """libc's write() called without releasing the GIL (ctypes.PyDLL keeps it), else
    os.write (which releases it)."""
    try:
        import ctypes
        write = ctypes.PyDLL(None).write
        write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
        write.restype = ctypes.c_ssize_t
        return write
    except (ImportError, OSError, AttributeError):
        return lambda fd, data, size: os.write(fd, data[:size])


_write_holding_gil = _load_write_holding_gil()

#: States of a :class:`Resumable` (changed under the pool's lock).
_RUNNING, _WAITING, _QUEUED, _STOPPED = range(4)


class Resumable:
    """The handle of a pool job that parks between pieces of work: the job (in its thread)
    calls :meth:`park`; the event loop calls :meth:`resume` or :meth:`stop`. Made by the job
    for itself; ``owner`` is the one it was submitted for (see :class:`WorkerPool`)."""

    __slots__ = ("owner", "prepull", "_pool", "_wake", "_state", "_wanted", "_slot")

    def __init__(self, pool: WorkerPool, owner: object) -> None:
        self.owner = owner
        #: For the job's runner: the job does its first piece of work without being asked
        #: (see :func:`kyoukai_h2fast.apps.runners._stream`).
        self.prepull = False
        self._pool = pool
        #: Held while the job runs; its thread waits by acquiring it again, and whoever
        #: wakes it releases it (once per wait).
        self._wake = threading.Lock()
        self._wake.acquire()
        self._state = _RUNNING
        #: A resume that came while the job was running.
        self._wanted = False
        #: Whether the job was woken holding a slot (resumed) or not (stopped).
        self._slot = True

    def park(self) -> bool:
        """In the job's thread: give the slot up and wait until :meth:`resume` (True: the job
        holds a slot again and goes on) or :meth:`stop` (False: it holds none; it should
        only clean up and return). A resume that came while the job still ran counts: it
        goes on in its owner's turn."""
        return self._pool._park(self)

    def resume(self) -> None:
        """Let the parked job go on, with a slot: now if one is free, else in its owner's
        turn. Called while the job still runs, it goes on when it parks; once stopped,
        nothing."""
        self._pool._resume_parked(self)

    def stop(self) -> None:
        """The job is to clean up and return: woken at once if parked (without a slot, and
        out of its owner's queue), else when it next parks. Stopping twice does nothing."""
        self._pool._stop_parked(self)

    @property
    def stopped(self) -> bool:
        return self._state == _STOPPED


@contextlib.contextmanager
def blocking() -> Iterator[None]:
    """Wrap a wait for the client (a blocking body read): inside a pool job, its slot is
    given to another job for the duration of the wait."""
    pool = getattr(_current, "pool", None)
    if pool is None:
        yield
        return
    pool._begin_wait()
    try:
        yield
    finally:
        pool._end_wait()


class Mailbox:
    """Results from worker threads to the event loop, with one wake-up per batch.

    ``loop.call_soon_threadsafe`` writes to the loop's self-pipe on every call; under load
    many handlers finish within one loop iteration, so posts are queued and only the first
    of a batch wakes the loop. (A post racing with a drain at worst schedules one extra,
    empty drain; none is lost, because ``_drain`` clears the flag before it drains.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque = deque()
        self._scheduled = False

    def post(self, callback: Callable[..., object], *args: Any) -> None:
        self._items.append((callback, args))
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop closed during shutdown: drop it
                pass

    def _drain(self) -> None:
        self._scheduled = False
        items = self._items
        while items:
            callback, args = items.popleft()
            try:
                callback(*args)
            except Exception:
                log.exception("error handing a worker result to the connection")


def start_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
                  context: contextvars.Context | None = None) -> asyncio.Task | None:
    """Run ``coro`` now until it first suspends; returns None if it finished, else the Task
    that completes it (what Python 3.12 calls an eager task). Most handlers never suspend:
    this saves a Task and a loop iteration per request. Every step of ``coro`` runs in one
    ``contextvars.Context``: ``context``, or a copy of the caller's made for this call (so a
    ContextVar token set before the first suspension can be reset after it).
    """
    if context is None:
        context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration:
        return None
    if getattr(yielded, "_asyncio_future_blocking", None):
        yielded._asyncio_future_blocking = False  # taken at once, as a Task does
    return context.run(loop.create_task, _resume(coro, yielded, context))


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any,
                  context: contextvars.Context) -> None:
    """Drive a started coroutine to its end the way a Task would, each step in ``context``
    (the Task's own context is a copy of it: the steps must see the Context object they
    started in, not a copy)."""
    send = coro.send
    throw = coro.throw
    run = context.run
    while True:
        error: BaseException | None = None
        try:
            if yielded is None:  # a bare yield (asyncio.sleep(0)): give the loop a turn
                await asyncio.sleep(0)
            elif getattr(yielded, "_asyncio_future_blocking", None) is not None:
                try:
                    await yielded  # wait for it; the coroutine reads its outcome itself
                except asyncio.CancelledError:
                    if not yielded.cancelled():
                        raise
                except BaseException:
                    pass
            else:
                error = RuntimeError(f"bad yield from a coroutine: {yielded!r}")
        except asyncio.CancelledError as cancel:  # we were cancelled: cancel the coroutine
            error = cancel
        try:
            yielded = run(send, None) if error is None else run(throw, error)
        except StopIteration:
            return
        if getattr(yielded, "_asyncio_future_blocking", None):
            yielded._asyncio_future_blocking = False
