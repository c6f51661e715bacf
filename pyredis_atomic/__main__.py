"""``python -m pyredis_atomic``: the same as the ``pyredis-atomic`` command."""

from .cli.main import main

if __name__ == "__main__":
    main()
