# cython: language_level=3
# Marks kyoukai_h2fast.websocket as a package for ``cimport`` (as ../__init__.pxd does for
# kyoukai_h2fast); shipped in the wheel next to the compiled module's .pxd.
