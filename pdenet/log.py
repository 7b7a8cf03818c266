"""pdenet's logger: ``logging.getLogger("pdenet")``.

Library code reports what it does through this logger (a run's start and end, its output
file, the time taken) and never prints; errors are exceptions, which the command line prints as
one line. By default nothing is shown (a :class:`logging.NullHandler`); ``pdenet run -v`` or
:func:`verbose` in a script or notebook shows the messages on stderr::

    import logging, pdenet
    pdenet.log.verbose()                     # INFO and above, on stderr
    logging.getLogger("pdenet").setLevel(logging.DEBUG)   # or configure it like any logger
"""
from __future__ import annotations

import logging
import sys
from typing import IO, Any

logger = logging.getLogger("pdenet")
logger.addHandler(logging.NullHandler())

_HANDLER: logging.Handler | None = None


def verbose(level: int = logging.INFO, stream: IO[str] | None = None) -> logging.Logger:
    """Show pdenet's messages of ``level`` and above on ``stream`` (default stderr); calling it
    again changes the level (one handler, not one per call). Returns the logger."""
    global _HANDLER
    if _HANDLER is None:
        _HANDLER = logging.StreamHandler(stream or sys.stderr)
        _HANDLER.setFormatter(logging.Formatter("pdenet: %(message)s"))
        logger.addHandler(_HANDLER)
    elif stream is not None and isinstance(_HANDLER, logging.StreamHandler):
        _HANDLER.setStream(stream)
    logger.setLevel(level)
    return logger


def progress(total: float, desc: str, quiet: bool | None, unit: str = "step") -> Any:
    """A progress bar (tqdm.auto: a widget in Jupyter, text on a terminal's stderr).

    ``quiet=True``: none. ``quiet=False``: shown (on a terminal). ``quiet=None`` (the Python
    API's default): shown only once the work has lasted 2 s, so short runs print nothing."""
    import warnings

    try:
        with warnings.catch_warnings():   # "IProgress not found": Jupyter without ipywidgets
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                    disable=True if quiet else None, dynamic_ncols=True, delay=2.0 if quiet is None else 0.0)
    except ImportError:   # tqdm.auto in a notebook without ipywidgets: the text bar
        from tqdm import tqdm as text
        return text(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                    disable=True if quiet else None, dynamic_ncols=True, delay=2.0 if quiet is None else 0.0)
