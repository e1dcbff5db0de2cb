"""Exceptions that s5geo raises for problems a user can fix.

The CLI prints these as one line (``s5geo <command>: error: <message>``) and exits non-zero, without a
traceback. Library code raises them with a message that names the file and the problem.
"""

from __future__ import annotations


class S5GeoError(Exception):
    """Base class for user-facing errors (bad input, missing files, refused overwrite)."""


class DatasetLayoutError(S5GeoError, FileNotFoundError):
    """A dataset folder does not hold the files in the layout the dataset expects."""


class InvalidMaskError(S5GeoError, ValueError):
    """A mask holds values or colours that do not map to a known class, or mismatches its image."""


class OutputExistsError(S5GeoError, FileExistsError):
    """An output file exists and overwriting was not requested."""


class SplitError(S5GeoError, ValueError):
    """A dataset was asked for a split (or corpus part) it does not have."""
