"""The test suite, grouped like the package (``codec/``, ``http2/``, ``http1/``, ``wsgi/``,
``apps/``, ``server/``, ``process/``), with ``quality/`` for the checks of the source tree and
its artefacts, ``helpers/`` for the clients and the server harness, and ``served_apps/`` for
the apps the test servers serve (``tests.served_apps.<module>:<name>``)."""
