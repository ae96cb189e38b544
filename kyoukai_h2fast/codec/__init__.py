"""Wire codecs: HTTP/2 frames, HPACK and request/response header fields.

Each hot path has a selector module here (:mod:`.frames`, :mod:`.hpack`, :mod:`.headers`) that
gives the compiled module (``kyoukai_h2fast._<name>_c``) or its pure-Python twin beside it
(``_<name>_py``), as :mod:`kyoukai_h2fast._switch` decides. No I/O and no connection state:
bytes and field lists in, frames, fields or errors out.
"""
