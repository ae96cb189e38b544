"""kyoukai_h2fast: a fast HTTP/2 server for Kyoukai-style async apps and any WSGI app."""
__version__ = "0.1.0"
