"""``python -m kyoukai_h2fast``: the same as the ``kyoukai-h2fast`` command."""
from .process.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
