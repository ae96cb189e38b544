"""The pure-Python twin of the compiled connection engine, built on ``h2``.

:mod:`.engine` holds its :class:`~.engine.Engine` (the contract of
:class:`kyoukai_h2fast.contracts.Engine`); :mod:`.connection` adapts h2's ``H2Connection`` to
it, :mod:`.send` schedules the DATA it sends and :mod:`.budgets` counts the flood budgets. It is
also the oracle of the differential tests against the compiled engine.
"""
