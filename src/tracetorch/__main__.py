"""``python -m tracetorch``: the same as the ``tracetorch`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
