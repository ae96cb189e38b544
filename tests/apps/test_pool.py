"""The WSGI worker pool (slots, fairness across owners, waits for the client, daemon
threads) and the thread-to-loop mailbox."""
from __future__ import annotations

import asyncio
import threading
import time

from kyoukai_h2fast.apps.pool import Mailbox, WorkerPool, blocking


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


class Recorder:
    """Jobs that record their start and wait for a gate."""

    def __init__(self) -> None:
        self.started: list = []
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def job(self, name) -> None:
        with self._lock:
            self.started.append(name)
        self.gate.wait(10)


def test_a_burst_of_jobs_runs_concurrently_up_to_the_pool_size():
    """Five jobs submitted at once all run at once on a pool of six (each waits for the
    others: with one thread absorbing the burst they would run one by one and time out),
    also when a thread is already idle from earlier work."""
    pool = WorkerPool(6, "test")
    warm = threading.Event()
    pool.submit(warm.set)
    wait_until(lambda: warm.is_set() and pool.busy == 0)
    barrier = threading.Barrier(5, timeout=5)
    names = []

    def job():
        barrier.wait()
        names.append(threading.current_thread().name)

    for _ in range(5):
        pool.submit(job)
    wait_until(lambda: len(names) == 5)
    assert len(set(names)) == 5
    pool.shutdown()


def test_jobs_beyond_the_size_wait_for_a_free_slot():
    pool = WorkerPool(2, "test")
    rec = Recorder()
    for i in range(3):
        pool.submit(rec.job, i)
    wait_until(lambda: len(rec.started) == 2)
    time.sleep(0.1)
    assert sorted(rec.started) == [0, 1]  # the third waits for a slot
    assert pool.busy == 2
    rec.gate.set()
    wait_until(lambda: len(rec.started) == 3)
    pool.shutdown()


def test_a_job_waiting_for_its_client_gives_its_slot_to_another():
    """A job inside ``blocking()`` (a body read waiting for the client) holds no slot: with
    one slot, a second job runs while the first waits."""
    pool = WorkerPool(1, "test")
    client_data = threading.Event()
    ran = []

    def reader():
        with blocking():
            client_data.wait(10)
        ran.append("reader")

    pool.submit(reader)
    pool.submit(ran.append, "other")
    wait_until(lambda: ran == ["other"])
    client_data.set()
    wait_until(lambda: ran == ["other", "reader"])
    pool.shutdown()


def test_free_slots_go_to_the_owners_in_turn():
    """Owner A queued many jobs before owner B's one: B's job gets the next free slot."""
    pool = WorkerPool(1, "test")
    rec = Recorder()
    pool.submit(rec.job, "a0", owner="A")
    wait_until(lambda: rec.started == ["a0"])
    for i in range(1, 4):
        pool.submit(rec.job, f"a{i}", owner="A")
    pool.submit(rec.job, "b0", owner="B")
    rec.gate.set()
    wait_until(lambda: len(rec.started) == 5)
    assert rec.started[:3] == ["a0", "a1", "b0"]
    pool.shutdown()


def test_per_owner_cap_leaves_slots_to_other_owners():
    pool = WorkerPool(4, "test", per_owner=2)
    rec = Recorder()
    for i in range(4):
        pool.submit(rec.job, f"a{i}", owner="A")
    wait_until(lambda: len(rec.started) == 2)
    pool.submit(rec.job, "b0", owner="B")
    wait_until(lambda: "b0" in rec.started)
    time.sleep(0.1)
    assert sorted(rec.started) == ["a0", "a1", "b0"]
    rec.gate.set()
    wait_until(lambda: len(rec.started) == 5)
    pool.shutdown()


def test_forget_drops_an_owners_waiting_jobs():
    pool = WorkerPool(1, "test")
    rec = Recorder()
    pool.submit(rec.job, "a0", owner="A")
    pool.submit(rec.job, "a1", owner="A")
    dropped = pool.forget("A")
    assert [job[1] for job in dropped] == [("a1",)]
    rec.gate.set()
    time.sleep(0.1)
    assert rec.started == ["a0"]
    pool.shutdown()


def test_threads_are_daemons_and_shutdown_drops_waiting_jobs():
    pool = WorkerPool(1, "test")
    gate = threading.Event()
    ran = []
    pool.submit(gate.wait, 5)
    pool.submit(ran.append, "queued")
    time.sleep(0.05)
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("test-"))
    assert pool.shutdown() == 1  # the running job is abandoned, the waiting one dropped
    gate.set()
    time.sleep(0.1)
    assert ran == []


def test_shutdown_waits_for_running_jobs_and_close_jobs_need_no_slot():
    pool = WorkerPool(1, "test")
    gate = threading.Event()
    closed = []
    pool.submit(gate.wait, 5)
    pool.submit(closed.append, "closed", kind="close")  # runs although the slot is taken
    wait_until(lambda: closed == ["closed"])
    threading.Timer(0.2, gate.set).start()
    assert pool.shutdown(timeout=5) == 0  # the job finished within the timeout


def test_extra_threads_exit_after_a_while_idle(monkeypatch):
    monkeypatch.setattr(WorkerPool, "IDLE_EXIT", 0.2)
    pool = WorkerPool(1, "test")
    release = threading.Event()

    def reader():
        with blocking():
            release.wait(10)

    for _ in range(3):  # waiting readers free their slots: three threads
        pool.submit(reader)
    wait_until(lambda: pool.threads == 3)
    release.set()
    wait_until(lambda: pool.threads == 1, timeout=10)
    pool.shutdown()


def test_mailbox_delivers_every_post_from_many_threads_with_few_wakeups():
    async def main():
        loop = asyncio.get_running_loop()
        box = Mailbox(loop)
        got = []
        wakeups = 0
        real = loop.call_soon_threadsafe

        def counting(callback, *args):
            nonlocal wakeups
            wakeups += 1
            return real(callback, *args)

        loop.call_soon_threadsafe = counting

        def producer(n):
            for i in range(500):
                box.post(got.append, (n, i))

        threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for _ in range(100):
            if len(got) == 2000:
                break
            await asyncio.sleep(0.01)
        return got, wakeups

    got, wakeups = asyncio.run(main())
    assert len(got) == 2000
    for n in range(4):  # each thread's posts arrive in order
        assert [i for m, i in got if m == n] == list(range(500))
    assert wakeups < 2000
