"""`open_virtual_mfdataset`: many files opened virtually (in parallel) and combined like xarray."""

from __future__ import annotations

import atexit
import glob
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs
import xarray as xr

import vzcore as vc
from vzcore.byteranges import shared_reads
from vzcore.parsers import Parser, detect_parser
from vzcore.urls import normalize_url
from vzcore.writers import failure_reason
from vzxarray._tree_reduce import tree_combine
from vzxarray.dataset import Chunks, group_from_dataset, lazy_dataset_from_group
from vzxarray.open import open_virtual_dataset

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "FileFailure",
    "MultiFileError",
    "WorkerDiedError",
    "expand_paths",
    "open_mfdataset",
    "open_virtual_mfdataset",
]

Parallel: TypeAlias = (
    "Literal[False, 'threads', 'processes', 'dask'] | Executor | type[Executor] | Client | None"
)
Reduce: TypeAlias = Literal["client", "tree"]


@attrs.frozen
class FileFailure:
    """One file that could not be opened, and why."""

    url: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.url}: {type(self.error).__name__}: {self.error}"


class WorkerDiedError(vc.VirtualizationError):
    """The worker process opening a file died (killed, out of memory, a crash in C code)."""


class MultiFileError(vc.VirtualizationError):
    """Some files could not be opened; ``failures`` lists every one of them."""

    def __init__(self, failures: Sequence[FileFailure]) -> None:
        lines = [str(f) for f in failures]
        super().__init__(
            f"{len(failures)} file(s) could not be opened:\n  " + "\n  ".join(lines), problems=lines
        )
        self.failures = tuple(failures)


def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """A sorted list of URLs from a glob, a path or a list (local globs only)."""
    if isinstance(paths, str | os.PathLike):
        text = os.fspath(paths)
        if "://" not in text and any(c in text for c in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise vc.VirtualizationError(f"no files match {text!r}")
            return [vc.registry.normalize_url(m) for m in matches]
        return [vc.registry.normalize_url(text)]
    urls = [vc.registry.normalize_url(os.fspath(p)) for p in paths]
    if not urls:
        raise vc.VirtualizationError("no paths given")
    return urls


@attrs.frozen
class _OpenOne:
    """The per-file task; a small picklable value so any executor can run it.

    It carries the submitter's `vzcore.limits` (a context variable, which worker
    threads, processes and dask workers do not inherit) and applies them.
    """

    registry: vc.ObjectStoreRegistry
    parser: Parser | None
    loadable_variables: tuple[str, ...] | None
    drop_variables: tuple[str, ...] | None
    decode_times: bool | None
    preprocess: Callable[[xr.Dataset], xr.Dataset] | None
    limits: vc.Limits = attrs.field(factory=vc.current_limits)

    def __call__(self, url: str) -> xr.Dataset | FileFailure:
        try:
            with vc.limits(self.limits):
                return self._open(url)
        except Exception as err:  # noqa: BLE001 (collected and reported per file)
            return FileFailure(url, err)

    def _open(self, url: str) -> xr.Dataset:
        with shared_reads():  # detection's reads served with the parser's and coordinates'
            parser = self.parser or detect_parser(url, self.registry)
            dataset = open_virtual_dataset(
                url,
                registry=self.registry,
                parser=parser,
                loadable_variables=self.loadable_variables,
                drop_variables=self.drop_variables,
                decode_times=self.decode_times,
            )
        return self.preprocess(dataset) if self.preprocess else dataset


def open_virtual_mfdataset(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    registry: vc.ObjectStoreRegistry | None = None,
    parser: Parser | None = None,
    concat_dim: str | Sequence[str | None] | None = None,
    combine: Literal["by_coords", "nested"] = "by_coords",
    compat: str = "override",
    coords: str = "minimal",
    data_vars: str = "minimal",
    join: str = "outer",
    combine_attrs: str = "override",
    preprocess: Callable[[xr.Dataset], xr.Dataset] | None = None,
    parallel: Parallel = None,
    loadable_variables: Iterable[str] | None = None,
    drop_variables: Iterable[str] | None = None,
    decode_times: bool | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    progress: bool | None = None,
    reduce: Reduce = "client",
) -> xr.Dataset:
    """Open many files as one virtual dataset, as `xarray.open_mfdataset` would.

    Parameters
    ----------
    paths
        A glob (local), a path or URL, or a list of them.
    registry
        Where to read; built with `ObjectStoreRegistry.for_urls` when not given.
    parser
        The files' parser; picked per file from its magic bytes when not given.
    concat_dim, combine, compat, coords, data_vars, join, combine_attrs, preprocess
        As in `xarray.open_mfdataset` (defaults suit virtual data: nothing compares
        the values of virtual variables).
    parallel
        None or False (serial), ``"threads"`` (16 threads for remote files, one
        per core for local ones), ``"processes"`` (a pool of one worker
        per core, started with "spawn" on first use and kept for later calls), ``"dask"`` (the
        current dask scheduler), any `concurrent.futures.Executor` (used, left
        running), or an Executor class such as ``ThreadPoolExecutor`` (created with
        its defaults, used and shut down; a `ProcessPoolExecutor` class starts its
        workers with "spawn", as ``"processes"`` does), or a `distributed.Client`.
        Workers return only the small per-file datasets.
    on_error
        ``"raise"``: every failing file is reported together (`MultiFileError`) and
        nothing is combined; ``"skip"``: failing files are left out and listed in
        ``ds.attrs["vz_skipped_files"]``.
    progress
        Show a progress bar (tqdm) — by default when stderr is a terminal (not
        with ``reduce="tree"``).
    reduce
        Where the per-file datasets are combined: ``"client"`` (here, the default)
        or ``"tree"``: on the workers of ``parallel=<distributed.Client>``, in a
        tree of partial combines, so the client receives one dataset; the result
        is the same.

    Raises
    ------
    MultiFileError
        Listing every file that could not be opened (``on_error="raise"``).
    VirtualizationError
        For bad arguments, files that do not combine, ``reduce="tree"`` without a
        `distributed.Client`.
    """
    urls = expand_paths(paths)
    registry = registry if registry is not None else vc.ObjectStoreRegistry.for_urls(urls)
    task = _OpenOne(
        registry=registry,
        parser=parser,
        loadable_variables=None if loadable_variables is None else tuple(loadable_variables),
        drop_variables=None if drop_variables is None else tuple(drop_variables),
        decode_times=decode_times,
        preprocess=preprocess,
    )
    options: dict[str, Any] = {
        "compat": compat,
        "coords": coords,
        "data_vars": data_vars,
        "join": join,
        "combine_attrs": combine_attrs,
    }
    if combine == "nested" and concat_dim is None:
        raise vc.VirtualizationError('combine="nested" needs concat_dim=')
    if reduce == "tree":
        client = _client_of(parallel)
        tree = tree_combine(
            client,
            task,
            urls,
            combine=combine,
            concat_dim=concat_dim,
            options=options,
            stop_on_failure=on_error == "raise",
        )
        failures = list(tree.failures)
        if tree.combined is None:
            raise MultiFileError(failures)
        combined: xr.Dataset = tree.combined
    elif reduce == "client":
        results = _run_all(
            task, urls, parallel, _show_progress(progress), stop_on_failure=on_error == "raise"
        )
        failures = [r for r in results if isinstance(r, FileFailure)]
        datasets = [r for r in results if isinstance(r, xr.Dataset)]
        if failures and (on_error == "raise" or not datasets):
            raise MultiFileError(failures)
        combined = _combine(datasets, combine, concat_dim, options)
    else:
        raise vc.VirtualizationError(f"reduce={reduce!r}: use 'client' or 'tree'")
    if failures:
        combined.attrs["vz_skipped_files"] = [f.url for f in failures]
    return combined


def open_mfdataset(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    registry: vc.ObjectStoreRegistry | None = None,
    parser: Parser | None = None,
    concat_dim: str | Sequence[str | None] | None = None,
    combine: Literal["by_coords", "nested"] = "by_coords",
    compat: str = "override",
    coords: str = "minimal",
    data_vars: str = "minimal",
    join: str = "outer",
    combine_attrs: str = "override",
    preprocess: Callable[[xr.Dataset], xr.Dataset] | None = None,
    parallel: Parallel = None,
    loadable_variables: Iterable[str] | None = None,
    drop_variables: Iterable[str] | None = None,
    decode_times: bool | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    progress: bool | None = None,
    reduce: Reduce = "client",
    chunks: Chunks = None,
) -> xr.Dataset:
    """Many files as one ordinary lazy Dataset (dask arrays), nothing saved.

    The files are virtualized and combined by `open_virtual_mfdataset` (same
    arguments), then opened by xarray through a `ManifestStore`: values decode as
    `xarray.open_mfdataset` decodes them, and each dask chunk reads its bytes from
    the original file. ``chunks`` are dask chunks (by default the source chunks,
    as ``xr.open_mfdataset``); ``decode_times`` applies to every variable.

    >>> import vzxarray as vx
    >>> ds = vx.open_mfdataset("data/tas_*.nc", parallel="threads")  # doctest: +SKIP
    >>> ds["tas"].mean("time").compute()  # doctest: +SKIP
    """
    urls = expand_paths(paths)
    registry = registry if registry is not None else vc.ObjectStoreRegistry.for_urls(urls)
    virtual = open_virtual_mfdataset(
        urls,
        registry=registry,
        parser=parser,
        concat_dim=concat_dim,
        combine=combine,
        compat=compat,
        coords=coords,
        data_vars=data_vars,
        join=join,
        combine_attrs=combine_attrs,
        preprocess=preprocess,
        parallel=parallel,
        loadable_variables=loadable_variables,
        drop_variables=drop_variables,
        decode_times=decode_times,
        on_error=on_error,
        progress=progress,
        reduce=reduce,
    )
    return lazy_dataset_from_group(
        group_from_dataset(virtual), registry=registry, chunks=chunks, decode_times=decode_times
    )


def _combine(
    datasets: list[xr.Dataset],
    combine: Literal["by_coords", "nested"],
    concat_dim: str | Sequence[str | None] | None,
    options: dict[str, Any],
) -> xr.Dataset:
    combined: xr.Dataset | xr.DataArray
    if combine == "nested":
        combined = xr.combine_nested(datasets, concat_dim=concat_dim, **options)
    else:
        combined = xr.combine_by_coords(datasets, **options)
    if not isinstance(combined, xr.Dataset):
        raise vc.VirtualizationError("the files did not combine into one dataset")
    return combined


def _client_of(parallel: Parallel) -> Client:
    distributed = sys.modules.get("distributed")
    if distributed is None or not isinstance(parallel, distributed.Client):
        raise vc.VirtualizationError(
            f'reduce="tree" combines on dask.distributed workers: it needs '
            f"parallel=<distributed.Client>, not parallel={parallel!r}"
        )
    client: Client = parallel
    return client


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _run_all(
    task: _OpenOne,
    urls: list[str],
    parallel: Parallel,
    progress: bool,
    *,
    stop_on_failure: bool = False,
) -> list[xr.Dataset | FileFailure]:
    if parallel is None or parallel is False:
        return list(_progress(map(task, urls), len(urls), progress))
    if parallel == "dask":
        return _run_dask(task, urls)
    distributed = sys.modules.get("distributed")
    if distributed is not None and isinstance(parallel, distributed.Client):
        return _run_on_client(parallel, task, urls)
    if parallel == "threads":
        with ThreadPoolExecutor(max_workers=_thread_count(urls)) as threads:
            return list(_progress(threads.map(task, urls), len(urls), progress))
    if parallel == "processes":
        return _run_processes(task, urls, progress, stop_on_failure=stop_on_failure)
    if isinstance(parallel, type) and issubclass(parallel, Executor):
        with _new_executor(parallel) as executor:
            return list(_progress(_mapped(executor, task, urls), len(urls), progress))
    if isinstance(parallel, Executor):
        return list(_progress(_mapped(parallel, task, urls), len(urls), progress))
    raise vc.VirtualizationError(
        f"parallel={parallel!r}: use None or False, 'threads', 'processes', 'dask', "
        "an Executor, an Executor class or a distributed.Client"
    )


_MAX_DEATHS = 3
"""Worker deaths `_run_processes` isolates (``on_error="skip"``) before it gives the rest up."""


def _run_processes(
    task: _OpenOne, urls: list[str], progress: bool, *, stop_on_failure: bool
) -> list[xr.Dataset | FileFailure]:
    """``parallel="processes"``: the files on the shared pool, and a worker's death named.

    The files in flight when a worker dies are not told apart (the whole pool
    breaks), so the unfinished files are opened one at a time in a one-worker pool
    until one kills its worker again: that file is a `FileFailure` naming it
    (`WorkerDiedError`), and the rest go back to a new pool. With
    ``stop_on_failure`` the first such file ends the run (the caller raises);
    otherwise, after `_MAX_DEATHS` deaths, the rest are failures unopened (the cause
    is not one file).
    """
    results: list[xr.Dataset | FileFailure] = []
    dead: list[str] = []
    remaining = urls
    while remaining:
        pool = _process_pool()
        count = len(results)
        try:
            shown = progress and not results
            results.extend(_progress(_mapped(pool, task, remaining), len(remaining), shown))
            return results
        except BrokenProcessPool:
            with _POOL_LOCK:
                if _POOL and _POOL[0] is pool:
                    _POOL.clear()  # the next pool starts new workers
        unfinished = remaining[len(results) - count :]
        isolated = _until_a_death(task, unfinished)
        results.extend(isolated)
        remaining = unfinished[len(isolated) :]
        last = isolated[-1] if isolated else None
        if isinstance(last, FileFailure) and isinstance(last.error, WorkerDiedError):
            dead.append(last.url)
        if dead and stop_on_failure:
            return results
        if len(dead) >= _MAX_DEATHS:
            results.extend(
                FileFailure(
                    url,
                    WorkerDiedError(
                        f"{url}: not opened: worker processes died opening {len(dead)} other "
                        f"files ({', '.join(dead)})"
                    ),
                )
                for url in remaining
            )
            return results
    return results


def _until_a_death(task: _OpenOne, urls: list[str]) -> list[xr.Dataset | FileFailure]:
    """Open ``urls`` one at a time in a one-worker pool until a file's worker dies;
    the results so far, that file's a `FileFailure` (`WorkerDiedError`) at the end."""
    results: list[xr.Dataset | FileFailure] = []
    pool = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_worker
    )
    try:
        for url in urls:
            try:
                results.append(pool.submit(task, url).result())
            except BrokenProcessPool as err:
                died = WorkerDiedError(f"{url}: a worker process died opening it ({err})")
                died.__cause__ = err
                results.append(FileFailure(url, died))
                break
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def _run_on_client(
    client: Client, task: _OpenOne, urls: list[str]
) -> list[xr.Dataset | FileFailure]:
    """Each file a task on the cluster, its key naming the file; a task that failed
    (its workers died: `distributed.KilledWorker`) is a `FileFailure` naming it."""
    keys = [f"vz-open-{index}-{url}" for index, url in enumerate(urls)]
    futures = client.map(task, urls, key=keys, pure=False)
    gathered = client.gather(futures, errors="skip")  # type: ignore[no-untyped-call]
    results: list[xr.Dataset | FileFailure] = []
    found = iter(gathered)
    for url, future in zip(urls, futures, strict=True):
        if future.status == "finished":
            results.append(next(found))
            continue
        error: BaseException = (
            future.exception()  # type: ignore[no-untyped-call]
            if future.status == "error"
            else RuntimeError(f"the task was {future.status}")
        )
        kind = WorkerDiedError if type(error).__name__ == "KilledWorker" else vc.VirtualizationError
        failure = kind(f"{url}: {type(error).__name__}: {failure_reason(error)}")
        failure.__cause__ = error
        results.append(FileFailure(url, failure))
    return results


_REMOTE_THREADS = 16
"""Threads of ``parallel="threads"`` when files are remote: their time is the store's latency."""


def _thread_count(urls: list[str]) -> int:
    """As many threads as help: one per core for local files (their work is CPU, and
    more threads only contend for h5py's lock and the GIL), `_REMOTE_THREADS` when some
    file is behind a network."""
    local = all(normalize_url(u).startswith("file://") for u in urls)
    cores = max(os.cpu_count() or 1, 2)
    return cores if local else max(cores, _REMOTE_THREADS)


_POOL: list[ProcessPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _process_pool() -> ProcessPoolExecutor:
    """The process pool of ``parallel="processes"``: one per process, started on first use.

    A worker's start (a fresh interpreter importing xarray, h5py and vz) costs more than
    parsing a few hundred files, so the workers are kept for the next call; they end
    with the process.
    """
    with _POOL_LOCK:
        if not _POOL:
            pool = ProcessPoolExecutor(
                mp_context=multiprocessing.get_context("spawn"), initializer=_warm_worker
            )
            atexit.register(pool.shutdown, wait=False, cancel_futures=True)
            _POOL.append(pool)
        return _POOL[0]


def _warm_worker() -> None:
    """Import what a worker needs before its first file arrives."""
    import vzcore.parsers  # noqa: F401


def _mapped(executor: Executor, task: _OpenOne, urls: list[str]) -> Iterable[Any]:
    """``executor.map``; a process pool gets the files in batches (a round trip each),
    a few per worker, rather than one round trip per file."""
    if isinstance(executor, ProcessPoolExecutor):
        workers = getattr(executor, "_max_workers", None) or os.cpu_count() or 1
        return executor.map(task, urls, chunksize=max(1, len(urls) // (4 * workers)))
    return executor.map(task, urls)


def _new_executor(cls: type[Executor]) -> Executor:
    """An executor of class ``cls`` with its defaults (the caller shuts it down)."""
    if issubclass(cls, ProcessPoolExecutor):
        # "spawn": forking a process that runs obstore's I/O threads can deadlock.
        return cls(mp_context=multiprocessing.get_context("spawn"))
    return cls()


def _run_dask(task: _OpenOne, urls: list[str]) -> list[xr.Dataset | FileFailure]:
    try:
        from dask.base import compute
        from dask.delayed import delayed
    except ImportError as err:
        raise vc.VirtualizationError("parallel='dask' needs dask: pip install dask") from err
    tasks = [delayed(task)(url) for url in urls]
    results: list[xr.Dataset | FileFailure] = list(compute(*tasks))  # type: ignore[no-untyped-call]
    return results


def _progress(items: Iterable[Any], total: int, show: bool) -> Iterable[Any]:
    if not show:
        return items
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return items
    bar: Iterable[Any] = tqdm(items, total=total, desc="virtualizing", unit="file")
    return bar
