# cython: language_level=3
"""C-level API of the compiled WSGI environ builder (``kyoukai_h2fast._environ_c``).

For the Cython connection core: build a request's PEP 3333 environ straight from the decoded
field list, without going through the Python-level ``build_environ`` wrapper.
"""

# A copy of ``base`` (from kyoukai_h2fast.wsgi.environ.make_base_environ: the per-connection
# constants) plus the request keys taken from ``headers``, a *validated* request field list of
# (bytes, bytes) tuples (kyoukai_h2fast._headers_c.validate_request_c), and
# ``wsgi.input`` = ``wsgi_input``. The key rules are in kyoukai_h2fast.wsgi.environ.
cdef dict build_environ_c(dict base, list headers, object wsgi_input)
