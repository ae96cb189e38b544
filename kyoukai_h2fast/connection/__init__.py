"""What every connection protocol shares, below HTTP/2 and HTTP/1.1 (and whatever joins them).

:mod:`.base` holds :class:`~.base.ConnectionBase`: a connection's place among the server's live
connections, its peer and per-connection environ, its timeout timer, and the app's work for its
requests (iterables closed where they run, work stopped for a request that is gone).
"""
