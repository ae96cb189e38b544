# HPACK primitive representations, included by _hpack_c.pyx (same module namespace):
# integers (RFC 7541 §5.1), the Huffman codec (§5.2, with the tables of _huffman_table.pxi)
# and string literals (§5.2).

# ---- integers (RFC 7541 §5.1) -------------------------------------------------------------
cdef inline Py_ssize_t _read_int(const unsigned char* data, Py_ssize_t n, Py_ssize_t pos,
                                 int prefix_bits, uint64_t* out) except -1:
    """Decode the integer whose first octet is ``data[pos]`` (``pos < n``); return the new pos.

    Like hpack: at most 5 octets after the prefix octet, the 5th ending the number.
    """
    cdef unsigned int mask = (1u << prefix_bits) - 1
    cdef uint64_t value = data[pos] & mask
    cdef unsigned int shift = 0
    cdef unsigned int octet
    cdef int consumed = 1
    pos += 1
    if value < mask:
        out[0] = value
        return pos
    while True:
        if pos >= n:
            raise HPACKDecodingError("Unable to decode HPACK integer representation")
        octet = data[pos]
        pos += 1
        consumed += 1
        if octet & 0x80:
            value += (<uint64_t>(octet & 0x7F)) << shift
            shift += 7
            if consumed > 5:
                raise HPACKDecodingError("Variable integer representation is too long")
        else:
            value += (<uint64_t>octet) << shift
            out[0] = value
            return pos


cdef inline unsigned char* _put_int(unsigned char* dst, uint64_t value, int prefix_bits,
                                    unsigned char flags) noexcept:
    """Write ``value`` with an N-bit prefix (at most 11 octets); return the end."""
    cdef uint64_t mask = (1u << prefix_bits) - 1
    if value < mask:
        dst[0] = flags | <unsigned char>value
        return dst + 1
    dst[0] = flags | <unsigned char>mask
    dst += 1
    value -= mask
    while value >= 128:
        dst[0] = <unsigned char>((value & 0x7F) | 0x80)
        dst += 1
        value >>= 7
    dst[0] = <unsigned char>value
    return dst + 1


# ---- Huffman (RFC 7541 §5.2, Appendix B) --------------------------------------------------
cdef enum:
    HUFF_EMIT = 1 << 16            # kh2_huff_decode entry bits (see src/tools/gen_huffman.py)
    HUFF_FAIL = 1 << 17
cdef Py_ssize_t _huffman_decode(const unsigned char* src, Py_ssize_t n,
                                unsigned char* dst) except -1:
    """Decode into ``dst`` (room for 2n + 1 octets: at most one symbol per nibble)."""
    cdef uint32_t state = 0, entry, seen = 0
    cdef Py_ssize_t i, out = 0
    cdef unsigned char octet
    for i in range(n):
        octet = src[i]
        entry = kh2_huff_decode[state | (octet >> 4)]
        dst[out] = <unsigned char>entry
        out += (entry >> 16) & 1
        seen |= entry
        state = (entry >> 4) & 0xFF0
        entry = kh2_huff_decode[state | (octet & 0x0F)]
        dst[out] = <unsigned char>entry
        out += (entry >> 16) & 1
        seen |= entry
        state = (entry >> 4) & 0xFF0
    if seen & HUFF_FAIL:
        raise HPACKDecodingError("Invalid Huffman string")
    if not kh2_huff_accept[state >> 4]:
        raise HPACKDecodingError("Incomplete Huffman string")
    return out


cdef inline Py_ssize_t _huffman_length(const unsigned char* src, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i, bits = 0
    for i in range(n):
        bits += kh2_huff_len[src[i]]
    return (bits + 7) >> 3


cdef unsigned char* _huffman_encode(const unsigned char* src, Py_ssize_t n,
                                    unsigned char* dst) noexcept:
    cdef uint64_t acc = 0
    cdef unsigned int bits = 0, length
    cdef Py_ssize_t i
    for i in range(n):
        length = kh2_huff_len[src[i]]
        acc = (acc << length) | kh2_huff_code[src[i]]
        bits += length
        while bits >= 8:
            bits -= 8
            dst[0] = <unsigned char>(acc >> bits)
            dst += 1
    if bits:
        dst[0] = <unsigned char>((acc << (8 - bits)) | (0xFF >> bits))   # pad with EOS's 1s
        dst += 1
    return dst


cdef inline unsigned char* _put_string(unsigned char* dst, const char* s, Py_ssize_t n,
                                       bint huffman) noexcept:
    """String literal (§5.2); Huffman only when shorter. Needs 11 + n octets of room."""
    cdef Py_ssize_t coded
    if huffman and n:
        coded = _huffman_length(<const unsigned char*>s, n)
        if coded < n:
            dst = _put_int(dst, coded, 7, 0x80)
            return _huffman_encode(<const unsigned char*>s, n, dst)
    dst = _put_int(dst, n, 7, 0)
    memcpy(dst, s, n)
    return dst + n
