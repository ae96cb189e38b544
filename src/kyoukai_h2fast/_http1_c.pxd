# cython: language_level=3
# kyoukai_h2fast._http1_c: the HTTP/1.1 hot path (one-pass request-head reader, response head
# writer, the exchange). Its API is Python-level (parse_head, response_head, Framing, Exchange);
# nothing is exported for cimport yet.
