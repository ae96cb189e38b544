"""HTTP/2 (RFC 9113): the asyncio protocol and the sans-IO connection engine under it.

* :mod:`.protocol` -- :class:`~.protocol.H2KyoukaiProtocol`, one connection from socket bytes
  to app dispatch;
* :mod:`.engine` -- the engine selector (the compiled ``kyoukai_h2fast._engine_c``, or the
  pure twin in :mod:`.h2engine`, built on ``h2``);
* :mod:`.events` -- what an engine reports; :mod:`.priority` -- RFC 9218 priority signals.
"""
