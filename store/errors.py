"""Errors a user can act on.

Anything raised as :class:`UserInputError` carries a sentence meant for the person who
supplied the input (a file, a filter, a parameter). The UI shows it as-is; any other
exception is a bug.
"""


class UserInputError(ValueError):
    """Input that cannot be used, with a message a user can act on."""


class LoadRefused(UserInputError):
    """A whole file was refused; nothing was written."""
