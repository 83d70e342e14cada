"""The errors likelab raises.

Every error a user can cause by bad input is a :class:`LikelabError` (a ``ValueError``), whose
message names what is wrong and, where it can, what to do instead. The CLI prints that message on
one line and exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "LikelabError",
    "OutputError",
    "ParameterError",
    "SpecError",
    "StoreError",
    "UnknownNameError",
    "UnsupportedError",
    "UserCodeError",
    "UserContractError",
]


class LikelabError(ValueError):
    """Base class of every error caused by bad input to likelab."""


class UnknownNameError(LikelabError, KeyError):
    """An objective, family or parameter name that likelab does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ParameterError(LikelabError):
    """A parameter value outside its valid range (e.g. ``pseudospherical:gamma=0.5``)."""


class SpecError(LikelabError):
    """A spec string that cannot be parsed (e.g. ``lq:q``)."""


class DataError(LikelabError):
    """Observations that are NaN, infinite, empty, of the wrong shape or outside the support."""


class UnsupportedError(LikelabError):
    """An operation undefined for the given input (e.g. the CRPS of a Categorical forecast)."""


class OutputError(LikelabError):
    """An output path likelab cannot or should not write (a directory where a file is expected,
    a missing or read-only parent directory, an unknown figure format, an empty path)."""


class UserCodeError(LikelabError):
    """A user's objective broke its contract: it raised, failed to import, has the wrong
    signature or returned something other than one floating-point loss per observation."""


class StoreError(SpecError):
    """A study store that cannot be used: missing, not a likelab store, damaged, of another
    schema, in use or not writable. The message names the file and what is wrong with it."""


class UserContractError(UserCodeError):
    """A user's objective failed on likelab's probe, a small valid input it is run on once before
    any data: it breaks the contract whatever the data (a mean instead of one loss per
    observation, the wrong type or shape, an exception or ``sys.exit()`` on a valid forecast)."""
