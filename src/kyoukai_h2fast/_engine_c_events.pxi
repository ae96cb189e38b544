# Included by _engine_c.pyx: building event objects (kyoukai_h2fast.http2.events) cheaply.
#
# The events are plain slotted Python classes whose ``__init__`` only stores its arguments in
# the slots of the same names. Running that ``__init__`` (a Python frame) costs about as much as
# the rest of a request's receive path, so when a class's ``__slots__`` are exactly the fields
# expected here, the object is allocated with the type's ``tp_alloc`` and the slots are written
# at the offsets of their member descriptors (read once at import). A class whose slots differ
# (the events module changed) is simply called: slower, still correct.

cdef extern from *:
    """
    #include "structmember.h"
    /* Offset of the object slot ``name`` of ``cls`` (a __slots__ member), or -1. */
    static Py_ssize_t kh2_slot_offset(PyObject* cls, const char* name) {
        PyObject* descr = PyObject_GetAttrString(cls, name);
        Py_ssize_t offset = -1;
        if (descr == NULL) { PyErr_Clear(); return -1; }
        if (Py_TYPE(descr) == &PyMemberDescr_Type) {
            PyMemberDef* member = ((PyMemberDescrObject*)descr)->d_member;
            if (member->type == T_OBJECT_EX && !(member->flags & READONLY))
                offset = member->offset;
        }
        Py_DECREF(descr);
        return offset;
    }
    static PyObject* kh2_alloc(PyObject* cls) {
        PyTypeObject* tp = (PyTypeObject*)cls;
        return tp->tp_alloc(tp, 0);
    }
    /* Store a new reference to ``value`` in the (empty) slot at ``offset``. */
    static void kh2_set_slot(PyObject* obj, Py_ssize_t offset, PyObject* value) {
        Py_INCREF(value);
        *(PyObject**)((char*)obj + offset) = value;
    }
    """
    Py_ssize_t kh2_slot_offset(object cls, const char* name)
    object kh2_alloc(object cls)
    void kh2_set_slot(object obj, Py_ssize_t offset, object value)


cdef struct _Layout:
    bint fast
    int count                 # fields
    Py_ssize_t offset[5]


cdef _Layout _L_REQUEST, _L_DATA, _L_TRAILERS, _L_RESET, _L_TERMINATED, _L_DRAINED, _L_SENT


cdef int _layout(_Layout* layout, object cls, tuple fields, tuple optional=()) except -1:
    """Fill ``layout`` for ``cls`` if its slots are ``fields`` (+ ``optional``, given a
    default by the caller)."""
    cdef Py_ssize_t i, offset
    slots = tuple(cls.__dict__.get("__slots__", ()))
    layout.fast = False
    layout.count = len(slots)
    if slots != fields and slots != fields + optional:
        return 0
    if getattr(cls, "__init__") is not cls.__dict__.get("__init__") or len(slots) > 5:
        return 0
    for i, name in enumerate(slots):
        offset = kh2_slot_offset(cls, name.encode())
        if offset < 0:
            return 0
        layout.offset[i] = offset
    layout.fast = True
    return 0


_layout(&_L_REQUEST, RequestReceived, ("stream_id", "headers", "end_stream", "content_length",
                                       "priority"))
_layout(&_L_DATA, DataReceived, ("stream_id", "data", "flow_controlled_length", "end_stream"))
_layout(&_L_TRAILERS, TrailersReceived, ("stream_id", "headers"))
_layout(&_L_RESET, StreamReset, ("stream_id", "error_code", "remote"), ("reason",))
_layout(&_L_TERMINATED, ConnectionTerminated, ("error_code", "last_stream_id", "additional_data"))
_layout(&_L_DRAINED, StreamDrained, ("stream_id",))
_layout(&_L_SENT, ResponseSent, ("stream_id", "request_complete"))


cdef object _event(_Layout* layout, object cls, object a, object b=None, object c=None,
                   object d=None, object e=None):
    """``cls(a, b, c, d, e)`` (as many arguments as the class has fields)."""
    cdef object obj
    if not layout.fast:
        return cls(*(a, b, c, d, e)[:layout.count])
    obj = kh2_alloc(cls)
    kh2_set_slot(obj, layout.offset[0], a)
    if layout.count > 1:
        kh2_set_slot(obj, layout.offset[1], b)
        if layout.count > 2:
            kh2_set_slot(obj, layout.offset[2], c)
            if layout.count > 3:
                kh2_set_slot(obj, layout.offset[3], d)
                if layout.count > 4:
                    kh2_set_slot(obj, layout.offset[4], e)
    return obj


#: Why the engine resets a stream, by error code (for StreamReset.reason when it has one).
_RESET_REASONS = {
    E_PROTOCOL_ERROR: "the request broke RFC 9113 (PROTOCOL_ERROR)",
    E_FLOW_CONTROL_ERROR: "its send window overflowed (FLOW_CONTROL_ERROR)",
    E_STREAM_CLOSED: "a frame arrived on a closed stream (STREAM_CLOSED)",
}


cdef inline object _stream_reset(uint32_t stream_id, uint32_t error_code, bint remote,
                                 str reason=None):
    """StreamReset; ``reason`` (why the engine reset it) goes in its ``reason`` field when
    the class has one (free text, not compared)."""
    if _L_RESET.count > 3:
        if reason is None:
            reason = "" if remote else _RESET_REASONS.get(error_code, f"0x{error_code:x}")
        return _event(&_L_RESET, _StreamReset, stream_id, error_code, remote, reason)
    return _event(&_L_RESET, _StreamReset, stream_id, error_code, remote)
