"""kyoukai_h2fast: a fast HTTP/2 server for Kyoukai-style async apps and any WSGI app.

Drop-in for Kyoukai's ``kyoukai.backends.http2``::

    from kyoukai_h2fast import H2KyoukaiComponent

Without asphalt, :func:`serve` (blocking) or :func:`start_server` (on a running loop).
"""
__version__ = "0.1.0"

from .config import ServerConfig
from .http2.protocol import H2KyoukaiProtocol
from .server.component import H2KyoukaiComponent, serve, start_server
from .wsgi.request_state import H2State, create_wsgi_environment, get_header

__all__ = [
    "H2KyoukaiComponent",
    "H2KyoukaiProtocol",
    "H2State",
    "create_wsgi_environment",
    "get_header",
    "serve",
    "start_server",
    "ServerConfig",
    "__version__",
]
