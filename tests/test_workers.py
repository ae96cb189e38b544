"""The WSGI worker pool (daemon threads, bounded size) and the thread-to-loop mailbox."""
from __future__ import annotations

import asyncio
import threading
import time

from kyoukai_h2fast.execution import Mailbox, WorkerPool


def test_pool_runs_jobs_concurrently_up_to_its_size():
    pool = WorkerPool(2, "test")
    gate = threading.Event()
    started = []
    lock = threading.Lock()

    def job(i):
        with lock:
            started.append(i)
        gate.wait(5)

    for i in range(3):
        pool.submit(job, i)
    deadline = time.monotonic() + 5
    while len(started) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sorted(started) == [0, 1]  # the third waits for a free thread
    assert pool.busy == 2
    gate.set()
    deadline = time.monotonic() + 5
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(started) == [0, 1, 2]
    pool.shutdown()


def test_pool_threads_are_daemons_and_shutdown_drops_queued_jobs():
    pool = WorkerPool(1, "test")
    gate = threading.Event()
    ran = []
    pool.submit(gate.wait, 5)
    pool.submit(ran.append, "queued")
    time.sleep(0.05)
    assert all(t.daemon for t in pool._threads)
    pool.shutdown()  # the running job is abandoned, the queued one dropped
    gate.set()
    time.sleep(0.1)
    assert ran == []


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
