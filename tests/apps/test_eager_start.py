"""``apps.start_eagerly``: a handler runs at once until it first suspends, then finishes in a
Task exactly as if it had been a Task all along (results, exceptions, sleep(0), cancellation,
its own contextvars context)."""
from __future__ import annotations

import asyncio
import contextvars

import pytest

from kyoukai_h2fast.apps.pool import start_eagerly

var = contextvars.ContextVar("var", default="unset")


def run(coro_fn):
    return asyncio.run(coro_fn())


def test_handler_that_never_suspends_runs_synchronously_without_a_task():
    log = []

    async def handler():
        log.append("ran")

    async def main():
        task = start_eagerly(asyncio.get_running_loop(), handler())
        return task, list(log)

    task, seen = run(main)
    assert task is None and seen == ["ran"]


def test_suspending_handler_gets_future_results_and_exceptions():
    out = []

    async def handler(fut_ok, fut_err):
        out.append(await fut_ok)
        try:
            await fut_err
        except KeyError as e:
            out.append(f"caught {e.args[0]}")
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        out.append("done")

    async def main():
        loop = asyncio.get_running_loop()
        ok, err = loop.create_future(), loop.create_future()
        task = start_eagerly(loop, handler(ok, err))
        assert task is not None and out == []
        ok.set_result(42)
        await asyncio.sleep(0)
        err.set_exception(KeyError("k"))
        await task

    run(main)
    assert out == [42, "caught k", "done"]


def test_cancelling_the_task_cancels_the_handler_where_it_waits():
    out = []

    async def handler():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            out.append("cancelled inside")
            raise

    async def main():
        task = start_eagerly(asyncio.get_running_loop(), handler())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert out == ["cancelled inside"]


def test_each_handler_has_its_own_context():
    async def handler(value, gate):
        var.set(value)
        await gate
        return var.get()

    async def main():
        loop = asyncio.get_running_loop()
        gate = loop.create_future()
        results = []

        async def record(value):
            results.append(await handler(value, gate))

        tasks = [start_eagerly(loop, record(v)) for v in ("a", "b")]
        assert var.get() == "unset"  # nothing leaked into the caller's context
        gate.set_result(None)
        await asyncio.gather(*tasks)
        return results

    assert sorted(run(main)) == ["a", "b"]


def test_every_step_runs_in_the_same_context_so_tokens_reset_after_a_suspension():
    """A ContextVar token set before the first suspension resets after it (a Task runs every
    step in one Context; a copy made for the Task would refuse the token with ValueError), and
    what a later step sets is seen by the context given to start_eagerly."""
    outcome = []

    async def handler():
        token = var.set("inside")
        await asyncio.sleep(0.001)
        try:
            var.reset(token)
            outcome.append("reset")
        except ValueError as e:
            outcome.append(f"ValueError: {e}")
        var.set("after")

    async def main():
        context = contextvars.copy_context()
        task = start_eagerly(asyncio.get_running_loop(), handler(), context)
        assert task is not None
        await task
        return context[var]

    assert run(main) == "after"
    assert outcome == ["reset"]
