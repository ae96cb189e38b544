"""Running apps: which kind an app is, the runners that call it, and where its code runs.

:mod:`.runners` detects the app kind and runs WSGI apps (thread pool or inline) and
Kyoukai-style coroutines; :mod:`.pool` is the worker thread pool, the mailbox back to the event
loop and the eager start of coroutines; :mod:`.werkzeug_fast` reads a werkzeug ``Response``
without running its WSGI path.
"""
