"""The WSGI worker pool (slots, fairness across owners, waits for the client, parked jobs,
daemon threads) and the thread-to-loop mailbox."""
from __future__ import annotations

import asyncio
import threading
import time

from kyoukai_h2fast.apps import pool as pool_module
from kyoukai_h2fast.apps.pool import _WAITING, Mailbox, Resumable, WorkerPool, blocking


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


class Streamer:
    """A job that parks between steps, as a streaming response does: it records, per step,
    its thread, and whether it went on (resumed) or was stopped."""

    def __init__(self, pool: WorkerPool, owner: object = None) -> None:
        self.pool = pool
        self.owner = owner
        self.job: Resumable | None = None
        self.steps: list = []
        self.ended: str | None = None

    def __call__(self) -> None:
        self.job = Resumable(self.pool, self.owner)
        thread = threading.get_ident()
        while self.job.park():
            self.steps.append(threading.get_ident() == thread)
        self.ended = "same thread" if threading.get_ident() == thread else "other thread"


def _parked(streamer: Streamer) -> Resumable:
    wait_until(lambda: streamer.job is not None and streamer.job._state == _WAITING)
    return streamer.job


def test_a_parked_job_holds_no_slot_and_goes_on_in_its_thread():
    """With one slot: a parked job lets other jobs run; resumed, it goes on on its own
    thread, each time; stopped, it returns (on that thread) without taking a slot."""
    pool = WorkerPool(1, "test")
    streamer = Streamer(pool)
    pool.submit(streamer)
    job = _parked(streamer)
    ran = []
    pool.submit(ran.append, "other")
    wait_until(lambda: ran == ["other"])
    for n in range(1, 4):
        job.resume()
        wait_until(lambda n=n: len(streamer.steps) == n)
        _parked(streamer)
    assert streamer.steps == [True, True, True]
    rec = Recorder()
    pool.submit(rec.job, "holder")  # takes the only slot
    wait_until(lambda: rec.started == ["holder"])
    job.stop()  # wakes it at once, slot or not
    wait_until(lambda: streamer.ended is not None)
    assert streamer.ended == "same thread" and len(streamer.steps) == 3
    job.resume()
    job.stop()  # (both do nothing now)
    rec.gate.set()
    wait_until(lambda: pool.busy == 0)
    assert pool._held == 0 and pool._owner_held == {} and pool._owner_waiting == {}
    pool.shutdown()


def test_a_resume_before_the_job_parks_is_kept():
    pool = WorkerPool(2, "test")
    gate = threading.Event()
    steps = []
    holder: list[Resumable] = []

    def job():
        me = Resumable(pool, None)
        holder.append(me)
        gate.wait(5)  # resumed meanwhile, while still running
        while me.park():
            steps.append("step")
            if len(steps) == 1:
                continue  # parks again: waits for the next resume
    pool.submit(job)
    wait_until(lambda: holder)
    holder[0].resume()
    gate.set()
    wait_until(lambda: steps == ["step"])
    holder[0].stop()
    wait_until(lambda: pool.busy == 0)
    assert steps == ["step"] and pool._held == 0
    pool.shutdown()


def test_a_resumed_job_waits_for_a_slot_in_its_owners_turn_and_stop_dequeues_it():
    """A resume while every slot is taken queues the job behind other owners' waiting jobs,
    in turn; a stop takes it out of the queue and wakes it at once."""
    pool = WorkerPool(1, "test")
    first, second = Streamer(pool, owner="A"), Streamer(pool, owner="C")
    pool.submit(first, owner="A")
    pool.submit(second, owner="C")
    _parked(first), _parked(second)
    rec = Recorder()
    pool.submit(rec.job, "b0", owner="B")  # holds the slot
    wait_until(lambda: rec.started == ["b0"])
    pool.submit(rec.job, "b1", owner="B")  # waits
    first.job.resume()  # waits, after B's job (owners in turn)
    second.job.resume()
    time.sleep(0.05)
    assert first.steps == [] and second.steps == []
    second.job.stop()  # out of the queue, at once
    wait_until(lambda: second.ended == "same thread")
    assert second.steps == []
    rec.gate.set()
    wait_until(lambda: first.steps == [True] and rec.started == ["b0", "b1"])
    first.job.stop()
    wait_until(lambda: pool.busy == 0)
    assert pool._held == 0 and pool._backlog == {}
    pool.shutdown()


def test_while_every_thread_is_parked_new_jobs_wait_without_taking_the_slots():
    """Every thread (max_threads) holds a parked job: a new job waits for a thread without
    taking a slot, so the parked jobs can still be resumed (else they would wait for the
    slot it holds, and it for their threads); it runs once one of them ends."""
    pool = WorkerPool(1, "test", max_threads=2)
    streamers = [Streamer(pool, owner=name) for name in "AB"]
    for streamer in streamers:
        pool.submit(streamer, owner=streamer.owner)
        _parked(streamer)
    ran = []
    pool.submit(ran.append, "new", owner="C")
    time.sleep(0.05)
    assert ran == [] and pool.threads == 2
    streamers[0].job.resume()
    wait_until(lambda: streamers[0].steps == [True])
    streamers[1].job.resume()
    wait_until(lambda: streamers[1].steps == [True])
    assert ran == []
    streamers[0].job.stop()  # its thread comes free: the new job runs on it
    wait_until(lambda: ran == ["new"])
    streamers[1].job.stop()
    wait_until(lambda: pool.busy == 0)
    assert pool._held == 0 and pool.threads == 2 and pool._owner_waiting == {}
    pool.shutdown()


def test_one_owner_occupies_at_most_half_the_threads_and_its_resumes_go_first():
    """max_threads 4: owner A's jobs occupy at most 2 threads (parked ones included), so A's
    further jobs wait while B's run; a resume of A's goes ahead of A's waiting new jobs; A's
    next job starts once one of its parked jobs ends."""
    pool = WorkerPool(1, "test", max_threads=4)
    streamers = [Streamer(pool, owner="A") for _ in range(3)]
    for streamer in streamers:
        pool.submit(streamer, owner="A")
    _parked(streamers[0]), _parked(streamers[1])
    time.sleep(0.05)
    assert streamers[2].job is None  # waits: A has 2 threads
    ran = []
    pool.submit(ran.append, "b", owner="B")
    wait_until(lambda: ran == ["b"])
    streamers[0].job.resume()  # not behind A's waiting job
    wait_until(lambda: streamers[0].steps == [True])
    _parked(streamers[0])
    assert streamers[2].job is None
    streamers[1].job.stop()
    wait_until(lambda: streamers[1].ended is not None)
    _parked(streamers[2])  # started on the thread that came free
    for streamer in (streamers[0], streamers[2]):
        streamer.job.stop()
    wait_until(lambda: pool.busy == 0)
    assert pool._held == 0 and pool._owner_waiting == {} and pool._backlog == {}
    pool.shutdown()


def test_forget_keeps_parked_jobs_and_shutdown_stops_those_still_queued():
    pool = WorkerPool(1, "test")
    streamer = Streamer(pool, owner="A")
    pool.submit(streamer, owner="A")
    job = _parked(streamer)
    rec = Recorder()
    pool.submit(rec.job, "b0", owner="B")
    wait_until(lambda: rec.started == ["b0"])
    pool.submit(rec.job, "a1", owner="A")
    job.resume()  # queued behind a1
    assert [entry[1] for entry in pool.forget("A")] == [("a1",)]
    assert list(pool._backlog["A"]) == [job]
    threading.Timer(0.2, rec.gate.set).start()
    assert pool.shutdown(timeout=5) == 0  # the queued parked job was stopped: it returned
    assert streamer.ended == "same thread" and streamer.steps in ([], [True])


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


def _warm_threads(pool: WorkerPool, count: int) -> None:
    """Start ``count`` threads (jobs that wait for each other) and wait until all sleep."""
    barrier = threading.Barrier(count, timeout=5)
    for _ in range(count):
        pool.submit(barrier.wait)
    wait_until(lambda: pool.busy == 0 and len(pool._sleepers) == count)


def test_jobs_submitted_in_one_loop_turn_wake_one_thread(monkeypatch):
    """The loop's submissions of one turn wake a single sleeping thread, once the turn is
    over; the threads pass the rest on to each other (one wake-up per batch, not per job)."""
    rings = []
    real_ring = pool_module._Bell.ring

    def ring(bell):
        rings.append(threading.get_ident())
        real_ring(bell)

    async def main():
        loop = asyncio.get_running_loop()
        pool = WorkerPool(4, "test", loop=loop)
        _warm_threads(pool, 4)
        monkeypatch.setattr(pool_module._Bell, "ring", ring)
        done = threading.Semaphore(0)
        for _ in range(10):
            pool.submit(done.release)
        assert rings == []  # not during the turn
        await asyncio.sleep(0)
        for _ in range(10):
            assert done.acquire(timeout=5)
        from_loop = rings.count(threading.get_ident())
        pool.shutdown()
        return from_loop

    assert asyncio.run(main()) == 1


def test_threads_sleep_on_a_lock_where_there_is_no_eventfd(monkeypatch):
    monkeypatch.setattr(pool_module, "_EVENTFD", False)
    pool = WorkerPool(3, "test")
    _warm_threads(pool, 3)
    barrier = threading.Barrier(3, timeout=5)
    names = []

    def job():
        barrier.wait()  # all three at once: each was woken
        names.append(threading.current_thread().name)

    for _ in range(3):
        pool.submit(job)
    wait_until(lambda: len(names) == 3)
    assert len(set(names)) == 3
    pool.shutdown()


def test_a_long_loop_turn_hands_its_waiting_jobs_over_before_it_ends():
    """hand_over (the loop is busy) wakes a thread for the jobs of the turn at once, instead
    of pausing for a pick-up that the end of the turn would only have started."""
    async def main():
        pool = WorkerPool(2, "test", loop=asyncio.get_running_loop())
        _warm_threads(pool, 2)
        ran = threading.Event()
        pool.submit(ran.set)
        pool._queued_since -= 1.0  # as if the turn had lasted a second
        assert pool.hand_over()
        picked_in_turn = ran.wait(5)  # (still inside the loop's turn)
        pool.shutdown()
        return picked_in_turn

    assert asyncio.run(main())
