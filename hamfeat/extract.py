"""Batch feature extraction: parallel workers, a resumable cache, atomic writes, progress.

The cache lives in ``$HAMFEAT_CACHE_DIR`` (default ``$XDG_CACHE_HOME/hamfeat`` or
``~/.cache/hamfeat``), one folder per :meth:`FeatureConfig.key`. Each entry is keyed by the
SHA-256 of the image's bytes and of its mask's bytes, so a renamed file is not recomputed and a
changed one is. Results are flushed to the cache in parquet parts while the run goes on (each
written to a temporary file and renamed into place), so a run that is killed keeps everything
flushed before the kill and the next run computes only the rest.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hamfeat._io import _read_only_fs, check_output, write_output
from hamfeat.backends import Backend, get_backend, scheduler_backend
from hamfeat.datasets import DEFAULT_DATASET, DatasetSpec, get_dataset
from hamfeat.errors import HamfeatError, ImageError, OutputError, Problem
from hamfeat.imageio import open_regular
from hamfeat.pipeline import FeatureConfig, extract_file

__all__ = [
    "ExtractionResult",
    "default_cache_dir",
    "extract_dataset",
    "extract_table",
    "write_csv_atomic",
    "write_table_atomic",
]

log = logging.getLogger("hamfeat")

#: Images per worker task.
CHUNK = 16
#: ``hamfeat features`` with stderr not a terminal (a log file): one progress line at least
#: this often (seconds; ``$HAMFEAT_PROGRESS_SECONDS`` overrides it, e.g. for tests), instead
#: of the progress bar a terminal gets.
PROGRESS_SECONDS = 5.0
#: Flush new results to the cache at least this often (seconds; ``$HAMFEAT_FLUSH_SECONDS``
#: overrides) and every this many images.
FLUSH_SECONDS, FLUSH_ROWS = 10.0, 512
#: Merge cache parts when there are more than this many.
MAX_PARTS = 64
META_COLUMNS = ("mask_source", "mask_method")


def default_cache_dir() -> Path:
    """``$HAMFEAT_CACHE_DIR``, else ``$XDG_CACHE_HOME/hamfeat``, else ``~/.cache/hamfeat``."""
    env = os.environ.get("HAMFEAT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hamfeat"


@dataclass
class ExtractionResult:
    """What :func:`extract_table` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per image that could be read, sorted by ``image_id``: the input's label
        columns, ``mask_source``, ``mask_method``, then one column per feature.
    problems : list of Problem
        Images that failed (errors; not in the table) and warnings (rejected masks, failed
        families).
    n_computed, n_cached : int
        How many images were computed in this run and how many came from the cache.
    """

    table: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    n_computed: int = 0
    n_cached: int = 0
    #: With masks asked for (``hamfeat features`` without ``--masks auto``): how many were
    #: found and used.
    masks: MaskSummary | None = None


@dataclass
class MaskSummary:
    """How many images of a run found a mask file, and how many were computed with it.

    Attributes
    ----------
    folder : str
        Where the masks were looked for (a ``--masks DIR``, or the data set's mask folders).
    n_images : int
        Images listed.
    n_found : int
        Images with a mask file there.
    n_used, n_auto : int
        Images computed with their mask, and with an automatic one (no mask, or a mask that
        could not be used); images that failed are in neither.
    expected : str
        The mask file name looked for, for the message when none matched.
    """

    folder: str
    n_images: int
    n_found: int
    n_used: int = 0
    n_auto: int = 0
    expected: str = "<image_id>_segmentation.png"
    #: Why there are no masks at all when that is expected (a data set without masks):
    #: then the line is a note, not a warning.
    absent: str | None = None

    @property
    def none_found(self) -> bool:
        """Masks were asked for but no image had one: likely the wrong folder or naming."""
        return self.n_images > 0 and self.n_found == 0

    def line(self) -> str:
        """One stderr line (starting ``warning:`` when none matched)."""
        if self.none_found and self.absent:
            return f"masks: {self.absent}; all {self.n_images} images get an automatic mask"
        if self.none_found:
            return (
                f"warning: masks: none of the {self.n_images} images has a mask in "
                f"{self.folder} (looked for {self.expected}); every image gets an automatic "
                "mask: is it the right folder, are the masks named that way?"
            )
        unusable = self.n_found - self.n_used
        return (
            f"masks: {self.n_found} of {self.n_images} images have a mask in {self.folder}; "
            f"{self.n_auto} get an automatic mask"
            + (f" ({unusable} of them because their mask could not be used or the image "
               "failed; -v lists why)" if unusable > 0 else "")
        )

    def count(self, table: pd.DataFrame) -> MaskSummary:
        """Fill ``n_used``/``n_auto`` from a feature table's ``mask_source`` column."""
        source = table["mask_source"].astype(str) if "mask_source" in table else pd.Series([])
        self.n_used = int((source == "given").sum())
        self.n_auto = int(len(source) - self.n_used)
        return self


def _hash_file(path: str | None) -> str:
    if path is None or (not isinstance(path, str | os.PathLike)) or pd.isna(path):
        return "-"
    h = hashlib.sha256()
    with open_regular(path) as fh:  # a FIFO, socket or device is refused, never waited on
        h.update(fh.read())
    return h.hexdigest()


def _key(image_path: str, mask_path: str | None) -> str:
    """Cache key of one image: hash of its bytes and of its mask's bytes."""
    try:
        mh = _hash_file(mask_path)
    except (OSError, HamfeatError):
        mh = "unreadable"  # the worker reports it and falls back to automatic segmentation
    return hashlib.sha256(f"{_hash_file(image_path)}:{mh}".encode()).hexdigest()[:32]


def _work(items: list[tuple[int, str, str | None]], config: FeatureConfig):
    """Worker task: extract a chunk of images; never raises for one bad image."""
    import cv2

    cv2.setNumThreads(1)
    out = []
    for idx, image_path, mask_path in items:
        try:
            res = extract_file(image_path, mask_path, config)
            out.append((idx, res.values, res.mask_source, res.mask_method, res.warnings, None))
        except HamfeatError as exc:
            out.append((idx, None, None, None, [], str(exc)))
        except Exception as exc:  # a bug must not kill the batch either; it is reported
            out.append((idx, None, None, None, [], f"{image_path}: unexpected error ({exc!r})"))
    return out


class _Cache:
    """Parquet parts under one configuration's folder; safe against kills at any moment.

    A cache that cannot be used (its path is a file or lies under one, its folder is read-only,
    full, or vanishes during the run) never stops an extraction: one warning names the folder
    and the reason, the cache is off for the rest of the run (parts already read stay in use,
    results are kept in memory), and the run goes on.
    """

    def __init__(self, root: Path | None, config: FeatureConfig, names: list[str]) -> None:
        self.dir = None if root is None else Path(root) / config.key()
        self.names = names
        self.pending: list[dict] = []
        self.entries: dict[str, tuple[np.ndarray, str, str, str]] = {}
        if self.dir is None:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._off(f"cannot create folder ({exc.strerror or exc})")
            return
        self._load()
        if self.dir is not None and not os.access(self.dir, os.W_OK | os.X_OK):
            ro = _read_only_fs(self.dir)
            self._off(f"cannot write ({'Read-only file system' if ro else 'Permission denied'})")

    def _off(self, reason: str) -> None:
        """Turn the cache off for the rest of the run, with one warning."""
        if self.dir is not None:
            log.warning("feature cache %s: %s; the run goes on without the cache", self.dir, reason)
        self.dir = None
        self.pending = []

    def _parts(self) -> list[Path]:
        """The cache's parquet parts (regular files only: a FIFO is never opened)."""
        out = []
        try:
            with os.scandir(self.dir) as it:
                for entry in it:
                    if entry.name.startswith("part-") and entry.name.endswith(".parquet"):
                        if entry.is_file(follow_symlinks=False):
                            out.append(Path(entry.path))
        except OSError as exc:
            self._off(f"cannot list folder ({exc.strerror or exc})")
        return sorted(out)

    def _load(self) -> None:
        for part in self._parts():
            try:
                df = pd.read_parquet(part)
            except Exception as exc:  # an unreadable part is ignored and recomputed
                log.warning("%s: unreadable cache part ignored (%s)", part, exc)
                continue
            if list(df.columns[4:]) != self.names:
                continue
            values = df[self.names].to_numpy(np.float64)
            for i, key in enumerate(df["key"]):
                self.entries[key] = (
                    values[i],
                    df["mask_source"].iat[i],
                    df["mask_method"].iat[i],
                    df["warnings"].iat[i],
                )

    def add(self, key: str, values: np.ndarray, source: str, method: str, warnings: str) -> None:
        self.entries[key] = (values, source, method, warnings)
        if self.dir is not None:
            self.pending.append(key)

    def flush(self) -> None:
        if self.dir is None or not self.pending:
            return
        if not self._write(self.pending, self.dir / f"part-{uuid.uuid4().hex}.parquet"):
            return
        self.pending = []
        parts = self._parts()
        if self.dir is None or len(parts) <= MAX_PARTS:
            return
        if self._write(list(self.entries), self.dir / f"part-{uuid.uuid4().hex}.parquet"):
            for p in parts:
                try:
                    p.unlink(missing_ok=True)
                except OSError as exc:
                    self._off(f"cannot remove merged part ({exc.strerror or exc})")
                    return

    def _write(self, keys: list[str], path: Path) -> bool:
        """Write one part; on failure turn the cache off and return False."""
        rows = [self.entries[k] for k in keys]
        df = pd.DataFrame(
            {
                "key": keys,
                "mask_source": [r[1] for r in rows],
                "mask_method": [r[2] for r in rows],
                "warnings": [r[3] for r in rows],
            }
        )
        feats = pd.DataFrame(np.vstack([r[0] for r in rows]), columns=self.names)
        try:
            write_table_atomic(pd.concat([df, feats], axis=1), path)
        except (OutputError, OSError) as exc:  # full, read-only, vanished: never stops the run
            reason = exc.reason if isinstance(exc, OutputError) else f"cannot write ({exc})"
            self._off(reason)
            return False
        return True


def write_table_atomic(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a parquet file so that ``path`` is either the old file or the complete new one.

    The shared writer of :mod:`hamfeat._io`: a regular file (or a symbolic link's regular
    target) is replaced atomically, keeping its permission bits; standard output (``"-"``),
    devices and FIFOs are written through, never replaced. On any error a regular file is left
    as it was, no temporary file is left behind, and :class:`OutputError` is raised.

    Parameters
    ----------
    table : pandas.DataFrame
        The table.
    path : path-like
        Destination.
    """
    write_output(path, lambda fh: table.to_parquet(fh, index=False), binary=True)


def write_csv_atomic(
    table: pd.DataFrame, path: str | os.PathLike[str], float_format: str | None = None
) -> None:
    """Write a CSV like :func:`write_table_atomic`: the old file or the complete new one."""
    write_output(
        path, lambda fh: table.to_csv(fh, index=False, float_format=float_format), binary=False
    )


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def extract_table(
    table: pd.DataFrame,
    config: FeatureConfig | None = None,
    *,
    jobs: int = 0,
    cache_dir: str | os.PathLike[str] | bool | None = True,
    progress: bool | None = None,
    backend: str = "joblib",
    scheduler: str | None = None,
    progress_lines: tuple[str, float] | None = None,
) -> ExtractionResult:
    """Extract the features of every image of a data set table.

    Parameters
    ----------
    table : pandas.DataFrame
        At least ``image_id`` and ``image_path``; ``mask_path`` optional; other columns (labels,
        metadata) are carried into the output.
    config : FeatureConfig, optional
        Defaults to ``FeatureConfig()``.
    jobs : int
        Worker processes; 0 means all cores, 1 runs in this process.
    cache_dir : path-like, True or False/None
        ``True``: :func:`default_cache_dir`; a path: that folder; ``False``/``None``: no cache.
    progress : bool, optional
        Show a progress bar on stderr (default: when stderr is a terminal).
    progress_lines : (str, float), optional
        Instead of a bar, print ``"<prefix>: 3200/10015 images, 41 s"`` on stderr every so many
        seconds (for a log file, where a bar is unreadable).
    backend : str
        A name of :func:`hamfeat.backends.backend_names`: where the chunks of images are
        computed: ``joblib``, local processes, or ``dask``, a Dask cluster
        (``pip install 'hamfeat[dask]'``): the one at ``scheduler``, else a local cluster of
        ``jobs`` worker processes. This process keeps the cache and writes; results are
        identical.
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``); implies
        ``backend="dask"``. Every worker must see the images at the same paths.

    Returns
    -------
    ExtractionResult
    """
    runner = scheduler_backend() if scheduler else get_backend(backend)
    runner.require()
    config = config or FeatureConfig()
    names = config.feature_names()
    if cache_dir is True:
        cache_dir = default_cache_dir()
    cache = _Cache(Path(cache_dir) if cache_dir else None, config, names)
    jobs = os.cpu_count() or 1 if jobs in (0, None) else max(1, int(jobs))
    if progress is None:
        progress = sys.stderr.isatty()

    table = table.reset_index(drop=True)
    keys, todo = _plan(table, cache)
    n_cached = len(table) - len(todo)
    errors = _compute(todo, keys, cache, config, jobs, runner, scheduler, len(table), n_cached,
                      progress, progress_lines)
    out, problems = _assemble(table, keys, errors, cache, names)
    return ExtractionResult(out, problems, n_computed=len(todo) - len(errors), n_cached=n_cached)


def _plan(table: pd.DataFrame, cache: _Cache) -> tuple[list[str | None], list]:
    """The cache key of each row (``None``: the file could not even be hashed) and the rows
    to compute, ``(row, image path, mask path)``: those not in the cache."""
    masks = table["mask_path"] if "mask_path" in table.columns else pd.Series([None] * len(table))
    keys: list[str | None] = []
    todo: list[tuple[int, str, str | None]] = []
    for i, (img, mask) in enumerate(zip(table["image_path"], masks, strict=True)):
        mask = None if pd.isna(mask) else str(mask)
        try:
            key = _key(str(img), mask)
        except (OSError, HamfeatError):
            key = None  # unreadable or not a regular file: the worker names the exact reason
        keys.append(key)
        if key is None or key not in cache.entries:
            todo.append((i, str(img), mask))
    return keys, todo


def _compute(todo: list, keys: list[str | None], cache: _Cache, config: FeatureConfig,
             jobs: int, runner, scheduler: str | None, n_total: int, n_cached: int,
             progress: bool, progress_lines: tuple[str, float] | None) -> dict[int, str]:
    """Compute ``todo`` with ``runner``, adding each result to ``cache`` (flushed every
    :data:`FLUSH_ROWS` rows or ``HAMFEAT_FLUSH_SECONDS``, and at the end whatever happens) and
    its key to ``keys``; returns the error message of each row that failed."""
    from tqdm import tqdm

    errors: dict[int, str] = {}
    bar = tqdm(
        total=len(todo), disable=not progress or progress_lines is not None, unit="img",
        file=sys.stderr,
    )
    t_start = last_flush = last_line = time.monotonic()
    n_done = n_cached
    flush_seconds = float(os.environ.get("HAMFEAT_FLUSH_SECONDS", FLUSH_SECONDS))
    try:
        for results in _run(todo, config, jobs, runner, scheduler):
            for idx, values, source, method, warns, error in results:
                if error is not None:
                    errors[idx] = error
                    continue
                key = keys[idx] or f"nokey-{idx}"
                cache.add(key, values, source, method, "\n".join(warns))
                keys[idx] = key
            bar.update(len(results))
            n_done += len(results)
            if progress_lines is not None and time.monotonic() - last_line >= progress_lines[1]:
                last_line = time.monotonic()
                print(
                    f"{progress_lines[0]}: {n_done}/{n_total} images, "
                    f"{last_line - t_start:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
            if len(cache.pending) >= FLUSH_ROWS or time.monotonic() - last_flush >= flush_seconds:
                cache.flush()
                last_flush = time.monotonic()
    finally:
        bar.close()
        cache.flush()
    return errors


def _assemble(table: pd.DataFrame, keys: list[str | None], errors: dict[int, str],
              cache: _Cache, names: list[str]) -> tuple[pd.DataFrame, list[Problem]]:
    """The output table (the input's other columns, mask source and method, the features;
    sorted by ``image_id``) and the problems: each row's warnings, then each failed row."""
    problems: list[Problem] = []
    rows, kept = [], []
    for i, key in enumerate(keys):
        if i in errors or key is None or key not in cache.entries:
            if i not in errors:
                errors[i] = str(ImageError(table["image_path"].iat[i], "could not be processed"))
            continue
        values, source, method, warns = cache.entries[key]
        rows.append(values)
        kept.append((i, source, method))
        path = str(table["image_path"].iat[i])
        for w in filter(None, warns.split("\n")):
            problems.append(Problem(path, _strip_path(w, path), "warning"))
    for i in sorted(errors):
        path = str(table["image_path"].iat[i])
        problems.append(Problem(path, _strip_path(errors[i], path)))

    idx = [k[0] for k in kept]
    out = table.iloc[idx].drop(columns=[c for c in ("image_path", "mask_path") if c in table])
    # (callers that need the file name carry it in a column of their own, e.g. "path")
    out = out.reset_index(drop=True)
    out["mask_source"] = [k[1] for k in kept]
    out["mask_method"] = [k[2] for k in kept]
    feats = pd.DataFrame(
        np.vstack(rows) if rows else np.empty((0, len(names))), columns=names, index=out.index
    )
    out = pd.concat([out, feats], axis=1)
    if "image_id" in out.columns:
        out = out.sort_values("image_id", kind="stable").reset_index(drop=True)
    return out, problems


def _strip_path(message: str, path: str) -> str:
    """Worker messages start with the image's path, which the Problem carries separately."""
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _run(
    todo: list, config: FeatureConfig, jobs: int, backend: Backend, scheduler: str | None = None
) -> Iterator[list]:
    """The per-image results of every chunk of ``todo``, computed by ``backend``."""
    work = functools.partial(_work, config=config)
    yield from backend.run(work, list(_chunks(todo, CHUNK)), jobs=jobs, scheduler=scheduler)


def extract_dataset(
    data: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    config: FeatureConfig | None = None,
    *,
    use_masks: bool = True,
    masks_dir: str | os.PathLike[str] | None = None,
    jobs: int = 0,
    cache_dir: str | os.PathLike[str] | bool | None = True,
    progress: bool | None = None,
    dataset: str | DatasetSpec = DEFAULT_DATASET,
    backend: str = "joblib",
    scheduler: str | None = None,
    table_format: str | None = None,
) -> ExtractionResult:
    """``hamfeat features``: a data set folder in, a parquet feature table and an errors file out.

    Parameters
    ----------
    data : path-like, optional
        The data set folder (see :func:`hamfeat.datasets.discovery.find_data_dir`).
    output : path-like
        The parquet table to write (atomically; see :func:`write_table_atomic`; ``"-"``:
        standard output). Beside it, ``<stem>.errors.csv`` lists every problem
        (``path,severity,message``), unless the table goes to standard output, a device or a
        FIFO (then only stderr lists them).
    config : FeatureConfig, optional
        Feature configuration.
    use_masks : bool
        Use the data set's masks where present; ``False`` segments every image automatically.
    masks_dir : path-like, optional
        Take the masks from this folder (``<image_id>_segmentation.png``) instead of the data
        set's own mask folders (with ``use_masks``).
    jobs, cache_dir, progress, backend, scheduler
        As in :func:`extract_table`; with ``progress`` None and stderr not a terminal, a
        progress line every :data:`PROGRESS_SECONDS` instead of the bar.
    dataset : str or DatasetSpec
        The data set (a registered name, :func:`hamfeat.datasets.get_dataset`): its loader
        reads the folder; its masks are summarised when it has masks; its name is recorded in
        the table's metadata unless the spec says not (``tag_tables``).
    table_format : {"parquet", "csv"}, optional
        Default: ``csv`` when ``output`` ends in ``.csv`` (any case), else ``parquet``. A CSV
        table does not carry the feature configuration (``train`` and ``cv`` read parquet).

    Returns
    -------
    ExtractionResult
        Its ``problems`` include the data set's own problems.
    """
    spec = get_dataset(dataset) if isinstance(dataset, str) else dataset

    config = config or FeatureConfig()
    output = Path(output)
    if table_format is None:
        table_format = "csv" if output.suffix.lower() == ".csv" else "parquet"
    if table_format not in ("parquet", "csv"):
        raise ValueError(f"table_format must be 'parquet' or 'csv', not {table_format!r}")
    # before any work: a folder, a socket, a missing or unwritable folder are refused at once
    errors_path = errors_path_for(output) if check_output(output).is_regular else None
    if errors_path is not None:
        check_output(errors_path)
    dataset = spec.load(data)
    table = dataset.table
    masks = None
    if not use_masks:
        table = table.assign(mask_path=None)
    elif masks_dir is not None:
        from hamfeat.datasets.discovery import masks_in_folder

        paths, mask_problems = masks_in_folder(masks_dir, table["image_id"].astype(str))
        dataset.problems.extend(mask_problems)
        table = table.assign(mask_path=paths)
        masks = MaskSummary(str(masks_dir), len(table), sum(p is not None for p in paths))
    elif spec.features.uses_masks and "mask_path" in table.columns:  # the data set's own masks
        found = table["mask_path"].dropna().astype(str)
        folders = sorted({str(Path(p).parent) for p in found})
        masks = MaskSummary(", ".join(folders), len(table), len(found))
        if not folders:  # a data set without masks: said, but not a warning
            dirs = ", ".join(f"{d}/" for d in spec.features.mask_dirs)
            masks.absent = f"the data set has no mask folder ({dirs}) under {dataset.root}"
    lines = None
    if progress is None and not sys.stderr.isatty():  # a log file: lines, not a bar
        seconds = float(os.environ.get("HAMFEAT_PROGRESS_SECONDS", PROGRESS_SECONDS))
        lines = ("hamfeat features", seconds)
    result = extract_table(
        table,
        config,
        jobs=jobs,
        cache_dir=cache_dir,
        progress=progress,
        backend=backend,
        scheduler=scheduler,
        progress_lines=lines,
    )
    result.problems[:0] = dataset.problems
    if masks is not None:
        result.masks = masks.count(result.table)
    result.table.attrs["hamfeat"] = {"config": config.as_dict(), "use_masks": use_masks}
    if config.segmenter is not None:  # its name, for `train` to record beside its hash
        result.table.attrs["hamfeat"]["segmenter_file"] = Path(config.segmenter).name
    if spec.tag_tables:
        result.table.attrs["hamfeat"]["dataset"] = spec.name
    if table_format == "csv":
        write_csv_atomic(result.table, output)
    else:
        write_table_atomic(result.table, output)
    errors = pd.DataFrame(
        [(p.path, p.severity, p.message) for p in result.problems],
        columns=["path", "severity", "message"],
    )
    if errors_path is not None:  # standard output, a device or a FIFO gets the table only
        write_csv_atomic(errors, errors_path)
    return result


def errors_path_for(output: str | os.PathLike[str]) -> Path:
    """The errors file written beside a feature table: ``<stem>.errors.csv``."""
    output = Path(output)
    return output.with_name(output.stem + ".errors.csv")
