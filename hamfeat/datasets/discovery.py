"""Discovery code every data set uses: the :class:`Dataset` a loader returns, the folder search
of a spec (:func:`find_data_dir`), folder walking and image and mask listing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hamfeat.datasets._registry import DatasetSpec, get_dataset
from hamfeat.errors import DatasetError, Problem
from hamfeat.imageio import IMAGE_SUFFIXES, not_regular_reason, special_kind

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MASK_SUFFIX",
    "Dataset",
    "find_data_dir",
    "list_images",
    "masks_in_folder",
    "walk_folders",
]

#: Mask files are named ``<image_id><MASK_SUFFIX>.png``.
MASK_SUFFIX = "_segmentation"


@dataclass
class Dataset:
    """A validated data set.

    Attributes
    ----------
    root : pathlib.Path
        The folder it was read from.
    table : pandas.DataFrame
        One row per usable image, sorted by ``image_id``: ``image_id, lesion_id, dx,
        image_path, mask_path`` (missing, ``pd.isna``, when there is no mask), then any other
        metadata columns (``dx_type, age, sex, localization`` for HAM10000).
    problems : list of Problem
        Everything found wrong, errors (rows left out) and warnings (rows kept).
    """

    root: Path
    table: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems whose rows were left out."""
        return [p for p in self.problems if p.severity == "error"]

    def __len__(self) -> int:
        return len(self.table)



def find_data_dir(
    spec: DatasetSpec | str, data: str | os.PathLike[str] | None = None
) -> Path:
    """Locate a data set's folder.

    Order: ``data`` when given, then the spec's environment variable, then its candidate
    folders (relative to the current folder).

    Parameters
    ----------
    spec : DatasetSpec or str
        The data set (or its registered name).
    data : path-like, optional
        An explicit folder.

    Returns
    -------
    pathlib.Path
        An existing folder.

    Raises
    ------
    DatasetError
        When no candidate exists; the message says where to put the data.
    """
    spec = get_dataset(spec) if isinstance(spec, str) else spec
    if data is not None:
        path = Path(data).expanduser()
        if not path.is_dir():
            raise DatasetError(f"{path}: data folder not found; {spec.hint}")
        return path
    candidates = []
    env = os.environ.get(spec.env)
    if env:
        candidates.append(Path(env).expanduser())
    candidates += [Path(c) for c in spec.candidates]
    for path in candidates:
        if path.is_dir():
            return path
    tried = ", ".join(str(c) for c in candidates)
    raise DatasetError(f"no {spec.label} data found (tried {tried}); {spec.hint}")


def walk_folders(
    root: str | os.PathLike[str],
    problems: list[Problem],
    *,
    recursive: bool = True,
    skip_hidden: bool = False,
) -> Iterable[tuple[str, list[str], list[str]]]:
    """``os.walk`` that follows symbolic links to folders, each real folder once.

    A link to a folder already listed (an ancestor: a loop; or a second link to one folder)
    is not entered again: it is listed in ``problems`` as a warning. Real folders are listed
    before links, so a link never hides the folder it points to.

    Parameters
    ----------
    root : path-like
        The top folder.
    problems : list of Problem
        Appended to: folders that cannot be listed (errors), links skipped (warnings).
    recursive : bool
        Descend into sub-folders; ``False`` yields ``root`` only.
    skip_hidden : bool
        Do not enter sub-folders whose name starts with ``.``.

    Yields
    ------
    tuple
        ``(dirpath, dirnames, filenames)``, names sorted; ``dirnames`` are every sub-folder
        (including skipped ones); broken links, FIFOs, sockets are in ``filenames``.
    """
    def onerror(exc: OSError) -> None:
        problems.append(Problem(str(exc.filename), f"cannot list folder ({exc.strerror})"))

    seen: set[tuple[int, int]] = set()
    try:
        st = os.stat(root)
        seen.add((st.st_dev, st.st_ino))
    except OSError:
        pass
    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        names = sorted(dirnames)
        filenames.sort()
        enter = []
        if recursive:
            real = [d for d in names if not os.path.islink(os.path.join(dirpath, d))]
            links = [d for d in names if d not in real]
            for d in real + links:
                if skip_hidden and d.startswith("."):
                    continue
                full = os.path.join(dirpath, d)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    problems.append(
                        Problem(full, "link to a folder already listed (a loop, or a second "
                                "link to it); not entered again", "warning")
                    )
                    continue
                seen.add(key)
                enter.append(d)
        dirnames[:] = sorted(enter)
        yield dirpath, names, filenames


def list_images(
    folder: str | os.PathLike[str], *, recursive: bool = False
) -> tuple[list[Path], list[Problem]]:
    """List the image files of a folder, sorted by path.

    Parameters
    ----------
    folder : path-like
        The folder.
    recursive : bool
        Descend into sub-folders, following links to folders (each folder once: a link to
        an ancestor is listed as skipped, never looped over).

    Returns
    -------
    files : list of pathlib.Path
        Entries whose suffix is one of ``.jpg .jpeg .png`` (any case), sorted. Entries with
        such a name that are not regular files (FIFOs, sockets, devices, broken links, and
        folders when not ``recursive``) are included: reading them fails at once with their
        kind (``not a regular file (fifo); skipped``), never opening a FIFO.
    problems : list of Problem
        Other files found (warnings), unreadable sub-folders, links to folders not entered.

    Raises
    ------
    DatasetError
        When ``folder`` is not a readable folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    files: list[Path] = []
    problems: list[Problem] = []
    for dirpath, dirnames, filenames in walk_folders(root, problems, recursive=recursive):
        names = filenames + ([] if recursive else dirnames)
        for name in sorted(names):
            path = Path(dirpath) / name
            if name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
            elif name in filenames:
                problems.append(
                    Problem(str(path), "not a .jpg/.jpeg/.png file; skipped", "warning")
                )
    files.sort()
    return files, problems


def masks_in_folder(
    folder: str | os.PathLike[str], image_ids: Iterable[str]
) -> tuple[list[str | None], list[Problem]]:
    """Each image's mask in a ``--masks DIR`` folder: ``<image_id>_segmentation.png``.

    Parameters
    ----------
    folder : path-like
        The folder of masks.
    image_ids : iterable of str

    Returns
    -------
    masks : list of str or None
        The mask file of each image id, ``None`` when there is none (the image is then
        segmented automatically).
    problems : list of Problem
        Warnings: a mask path that is not a regular file (a FIFO, a folder, a broken link ...)
        is never opened.

    Raises
    ------
    DatasetError
        The folder does not exist.
    """
    mdir = Path(folder)
    if not mdir.is_dir():
        raise DatasetError(f"{mdir}: masks folder not found")
    masks: list[str | None] = []
    problems: list[Problem] = []
    for i in image_ids:
        m = mdir / f"{i}{MASK_SUFFIX}.png"
        kind = special_kind(m)
        if kind is not None:  # a FIFO, folder, broken link ...: never opened
            problems.append(
                Problem(str(m), f"{not_regular_reason(kind)}; automatic mask used", "warning")
            )
        masks.append(str(m) if kind is None and m.is_file() else None)
    return masks, problems

