"""The ``pyredis-atomic`` operator command (``python -m pyredis_atomic`` too).

Each sub-command lives in its own module under :mod:`pyredis_atomic.cli.commands` and
exports ``command``; :func:`pyredis_atomic.cli.main.main` collects them.
"""
