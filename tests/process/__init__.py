"""Tests of the processes (kyoukai_h2fast.process): command line, supervisor, gunicorn worker."""
