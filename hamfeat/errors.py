"""Exceptions shared by every layer of hamfeat.

Every error that concerns one file carries that file's path, and its ``str`` is a single line of
the form ``"<path>: <what is wrong>"`` so that batch commands can print it as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

__all__ = [
    "DatasetError",
    "FileProblem",
    "HamfeatError",
    "ImageError",
    "MaskError",
    "ModelError",
    "OutputError",
    "Problem",
    "UsageError",
]


class HamfeatError(Exception):
    """Base class of every error hamfeat raises on purpose."""


class UsageError(HamfeatError):
    """An option that cannot be used as given (the command line exits 2, one line).

    The message names the option and lists the valid choices.
    """


class FileProblem(HamfeatError):
    """An error about one file: ``str(err)`` is ``"<path>: <reason>"`` on one line."""

    def __init__(self, path: str | PathLike[str] | None, reason: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return self.reason if self.path is None else f"{self.path}: {self.reason}"

    def __reduce__(self):  # picklable across joblib workers
        return (type(self), (self.path, self.reason))


class ImageError(FileProblem):
    """An image cannot be used: unreadable, corrupt, truncated, too large, wrong kind."""


class MaskError(FileProblem):
    """A mask cannot be used: unreadable, wrong size, empty or covering the whole image."""


class OutputError(FileProblem):
    """An output file cannot be written (read-only folder, full disk, ...); nothing half-written
    is left in its place."""


class ModelError(FileProblem):
    """A model file is not a hamfeat model, or does not match the features it is given."""


@dataclass(frozen=True)
class Problem:
    """One problem found while reading a data set.

    Parameters
    ----------
    path : str
        The file (or ``file:line``) the problem is about.
    message : str
        What is wrong, one line.
    severity : {"error", "warning"}
        ``"error"`` rows are left out of the data set; ``"warning"`` rows are kept.
    """

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


class DatasetError(HamfeatError):
    """A data set cannot be read, or (in strict mode) has problems.

    Attributes
    ----------
    problems : list of Problem
        Every problem found, not only the first.
    """

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        self.problems = list(problems or [])
        lines = [message] + [f"  {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        super().__init__("\n".join(lines))
