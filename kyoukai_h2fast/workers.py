"""The gunicorn worker class at its documented path (``-k kyoukai_h2fast.workers.H2Worker``).

It lives in :mod:`kyoukai_h2fast.process.gunicorn_worker`.
"""
from .process.gunicorn_worker import H2Worker

__all__ = ["H2Worker"]
