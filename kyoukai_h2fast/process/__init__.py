"""Processes: the command line, the multi-process supervisor, the gunicorn worker class and the
built-in demo app."""
