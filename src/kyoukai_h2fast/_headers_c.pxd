# cython: language_level=3
"""C-level API of the compiled header validation (``kyoukai_h2fast._headers_c``).

For the Cython connection core, which can validate fields while it decodes them, before any
Python object exists:

    cdef FieldBlockCheck check
    field_block_check_init(&check, False)          # False: a request block, True: trailers
    for each decoded field (name, value as pointer + length):
        field_block_check_field(&check, name, nlen, value, vlen)   # raises on the field
    content_length = field_block_check_finish(&check)          # whole-block rules

Every function raises ``kyoukai_h2fast.errors.MalformedRequestError`` (RFC 9113 §8.1.1: a
stream error, PROTOCOL_ERROR) and returns its error value (-1, or -2 where -1 is a result).

Lifetime: :c:func:`field_block_check_field` keeps the *pointers* of the ``:authority`` and
``host`` values (to compare them at the end, RFC 9113 §8.3.1) and nothing else; the caller
keeps those two buffers alive until :c:func:`field_block_check_finish` returns.
"""

# Bits of FieldBlockCheck.pseudo_seen, one per pseudo-header (RFC 9113 §8.3, RFC 8441 §4).
cdef enum:
    PSEUDO_METHOD = 1
    PSEUDO_SCHEME = 2
    PSEUDO_AUTHORITY = 4
    PSEUDO_PATH = 8
    PSEUDO_STATUS = 16
    PSEUDO_PROTOCOL = 32


cdef struct FieldBlockCheck:
    bint is_trailer             # trailers: no pseudo-headers, no host/authority/path rules
    unsigned int pseudo_seen    # PSEUDO_* bits of the pseudo-headers seen so far
    bint regular_seen           # a regular field was seen (pseudo-headers must come first)
    bint method_is_connect      # :method is exactly b"CONNECT"
    bint method_is_options      # :method is exactly b"OPTIONS"
    bint path_is_asterisk       # :path is b"*"
    bint path_is_absolute       # :path starts with b"/"
    bint host_seen
    const unsigned char* authority    # borrowed, see "Lifetime" above
    Py_ssize_t authority_len
    const unsigned char* host         # borrowed
    Py_ssize_t host_len
    Py_ssize_t content_length   # -1 until a content-length field is seen


# Character rules of one field (RFC 9113 §8.2.1), no context: non-empty name of legal
# lower-case characters, no colon after the first byte, value without NUL/CR/LF and without
# leading/trailing SP or HTAB. Returns 0, or raises and returns -1.
cdef int check_field_chars(const unsigned char* name, Py_ssize_t nlen,
                           const unsigned char* value, Py_ssize_t vlen) except -1

cdef void field_block_check_init(FieldBlockCheck* check, bint is_trailer) noexcept nogil

# One field in block order: check_field_chars, then the per-field rules of §8.2.2/§8.3
# (connection-specific fields, te, pseudo-header order/duplicates/names, empty :path, multiple
# host, content-length syntax and agreement).
cdef int field_block_check_field(FieldBlockCheck* check,
                                 const unsigned char* name, Py_ssize_t nlen,
                                 const unsigned char* value, Py_ssize_t vlen) except -1

# End of block: mandatory pseudo-headers, CONNECT rules, :protocol, host/:authority, :path
# form. Returns the declared content length, or -1 when none was declared; -2 on error.
cdef Py_ssize_t field_block_check_finish(FieldBlockCheck* check) except -2

# Whole decoded blocks: ``headers`` is a list of (bytes, bytes) tuples (tuple subclasses such
# as hpack's HeaderTuple accepted). validate_request_c returns the content length or -1.
cdef Py_ssize_t validate_request_c(list headers) except -2
cdef int validate_trailers_c(list headers) except -1

# start_response status + header pairs -> the response field list (see response_headers),
# with date (RFC 9110 §6.6.1, made once per second) and server appended unless the app gave them.
cdef list response_headers_c(object status, object headers)
