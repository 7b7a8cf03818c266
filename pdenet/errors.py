"""Errors that reach the user as one line: where (file, key) and why."""
from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with control characters (newlines, NUL, ...) escaped, so that a message quoting a
    file name, key or value stays one printable line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class PdenetError(Exception):
    """Base class. ``str(err)`` is the one-line message shown by the CLI."""


class CaseError(PdenetError):
    """An invalid case file: names the file, the key and the reason."""

    def __init__(self, reason: str, key: str | None = None, source: str | None = None) -> None:
        self.reason = reason
        self.key = key
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.source or "<case>"
        if self.key:
            where += f": {self.key}"
        return one_line(f"{where}: {self.reason}")

    def at(self, source: str | None = None, key: str | None = None) -> CaseError:
        """Return a copy located at ``source``/``key`` (filling what is unknown)."""
        return CaseError(self.reason, key=self.key or key, source=self.source or source)


class ExpressionError(PdenetError):
    """A case-file expression that is malformed or reaches outside the allowed language."""


class SolverError(PdenetError):
    """A numerical failure (non-finite state, non-converged Newton solve, ...)."""


class OutputError(PdenetError):
    """A problem reading or writing an HDF5 result file."""


class Interrupted(PdenetError):
    """Ctrl-C or SIGTERM during a run (partial output kept)."""
