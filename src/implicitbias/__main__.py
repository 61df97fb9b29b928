"""``python -m implicitbias``: the same program as the ``implicitbias`` command."""

import sys

from implicitbias.cli import main

if __name__ == "__main__":
    sys.exit(main())
