"""The server in one process: the component, its listening sockets and what serves each connection.

:mod:`.component` (``H2KyoukaiComponent``, ``serve``, ``start_server``), :mod:`.listener`
(sockets, accept loop), :mod:`.protocol_select` (HTTP/2 or HTTP/1.1 from a connection's first
bytes), :mod:`.tls`, :mod:`.accesslog`, :mod:`.proxy_headers` (trusted ``Forwarded`` /
``X-Forwarded-*``) and :mod:`.allocator` (C allocator tuning of a serving process).
"""
