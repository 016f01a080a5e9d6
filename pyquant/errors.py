"""Errors that reach the user as one line and exit code 2."""


class PyquantError(Exception):
    """A user-facing error: ``str(e)`` is one line naming the file and the problem."""

    exit_code = 2


class InputError(PyquantError):
    """Bad input file, argument or data."""
