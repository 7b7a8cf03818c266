"""``python -m pdenet ...``: the ``pdenet`` command line (:func:`pdenet.cli.main`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
