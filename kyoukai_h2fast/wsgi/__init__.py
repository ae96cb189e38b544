"""The request as apps see it (PEP 3333), for both protocols.

:mod:`.request_state` holds :class:`~.request_state.H2State` (a request's body as
``wsgi.input`` and its response record); :mod:`.environ` builds the environ (selector of the
compiled ``kyoukai_h2fast._environ_c`` and its pure twin ``_environ_py``); :mod:`.filewrapper`
is ``wsgi.file_wrapper``.
"""
