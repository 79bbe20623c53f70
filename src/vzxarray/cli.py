"""The ``vz`` command: ``vz virtualize``, ``vz info``, ``vz verify``, ``vz demo``.

A failure prints one line, ``vz: error: <message>``, to stderr and exits with status 1
(2 for a usage error, as argparse does; 130 after Ctrl-C, quietly); ``--debug`` or
``VZ_DEBUG=1`` shows the traceback instead. ``vz verify`` exits with 0 when every
source file is unchanged, 1 when one changed, vanished or could not be asked, and 3
when none changed but some have no recorded fingerprint to compare with.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vzcore as vc
from vzcore.algebra import referenced_paths
from vzcore.grid import describe_grid
from vzcore.parsers.icechunk import icechunk_storage, s3_virtual_chunk_container
from vzcore.urls import quote_path
from vzcore.verify import recorded_sources
from vzcore.writers import (
    WriteError,
    failure_reason,
    icechunk_commit_metadata,
    is_object_store_url,
    local_target,
    object_target,
    staged_folder_upload,
    staged_output,
)

__all__ = ["main"]

FORMATS = ("icechunk", "kerchunk-json", "kerchunk-parquet", "manifest-parquet")
_DEBUG_HELP = "show the traceback of an error (also: VZ_DEBUG=1)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vz", description="Virtual Zarr stores: chunk references into archival files."
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    # Also accepted after the command; SUPPRESS keeps a subcommand from resetting it.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    # How stores on object storage are reached (credentials: the environment's, as
    # obstore and Icechunk read them, AWS_ACCESS_KEY_ID and so on).
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("--endpoint", help="the S3 endpoint (an S3-compatible server)")
    remote.add_argument("--region", help="the S3 region")
    remote.add_argument(
        "--anonymous", action="store_true", help="read public buckets without credentials"
    )
    remote.add_argument(
        "--retries", type=int, help="retries of a failed request (default obstore's, 10)"
    )
    remote.add_argument("--timeout", help="time allowed a request, as '30s' (default 30s)")

    virtualize = commands.add_parser(
        "virtualize",
        parents=[debug, remote],
        help="reference many files as one dataset and save the references",
    )
    virtualize.add_argument(
        "inputs", nargs="+", help="files, URLs or globs (local, or s3://bucket/data/*.nc)"
    )
    how = virtualize.add_mutually_exclusive_group()
    how.add_argument("--concat-dim", help="concatenate along this dimension (combine nested)")
    how.add_argument(
        "--by-coords", action="store_true", help="combine by coordinates (the default)"
    )
    virtualize.add_argument(
        "--out",
        required=True,
        help="where to write the references: a path, or an s3:// URL",
    )
    virtualize.add_argument(
        "--format", choices=FORMATS, default="icechunk", help="output format (default icechunk)"
    )
    virtualize.add_argument(
        "--parallel", choices=("threads", "processes", "dask"), help="open files in parallel"
    )
    virtualize.add_argument(
        "--loadable", nargs="*", default=None, metavar="VAR", help="variables read into memory"
    )
    virtualize.add_argument(
        "--skip-bad", action="store_true", help="leave out files that fail, and list them"
    )

    info = commands.add_parser("info", parents=[debug, remote], help="describe a store vz can read")
    info.add_argument(
        "store", help="a file, a reference store, a Zarr/manifest store or an Icechunk repository"
    )
    version = info.add_mutually_exclusive_group()
    version.add_argument("--branch", help="an Icechunk repository's branch (default main)")
    version.add_argument("--tag", help="an Icechunk repository's tag")
    version.add_argument("--snapshot", help="an Icechunk repository's snapshot id")
    info.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also draw a variable's chunk map, coloured by source file (needs vz[plot])",
    )
    info.add_argument(
        "--variable",
        metavar="V",
        help="the variable --plot draws (default: the virtual array with the most chunks)",
    )

    check = commands.add_parser(
        "verify",
        parents=[debug, remote],
        help="list the source files that changed since a store's references were made",
    )
    check.add_argument("store", help="a manifest store, reference store or Icechunk repository")
    version = check.add_mutually_exclusive_group()
    version.add_argument("--branch", help="an Icechunk repository's branch (default main)")
    version.add_argument("--tag", help="an Icechunk repository's tag")
    version.add_argument("--snapshot", help="an Icechunk repository's snapshot id")

    demo = commands.add_parser(
        "demo",
        parents=[debug],
        help="the built-in example: a year of daily files, virtualized and checked",
    )
    demo.add_argument("--folder", help="where to write the example (default: a temp folder)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    debug = args.debug or os.environ.get("VZ_DEBUG", "") not in ("", "0")
    _quiet_icechunk()
    try:
        if args.command == "virtualize":
            _virtualize(args)
        elif args.command == "info":
            _info(
                args.store,
                branch=args.branch,
                tag=args.tag,
                snapshot_id=args.snapshot,
                plot=args.plot,
                variable=args.variable,
                remote=_remote_options(args),
            )
        elif args.command == "verify":
            return _verify(
                args.store,
                branch=args.branch,
                tag=args.tag,
                snapshot_id=args.snapshot,
                remote=_remote_options(args),
            )
        else:
            from vzxarray.demo import run_demo

            run_demo(args.folder)
    except KeyboardInterrupt:
        if debug:
            raise
        return 130
    except Exception as err:
        if debug:
            raise
        print(f"vz: error: {error_line(err)}", file=sys.stderr)
        return 1
    return 0


def error_line(err: BaseException) -> str:
    """One line that says what failed: vz's own message, or the error's type and first line."""
    if isinstance(err, OSError):
        return failure_reason(err)
    if not isinstance(err, vc.VirtualizationError):
        # Another library's error: its type says what kind of failure it is.
        return f"{type(err).__name__}: {failure_reason(err)}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    text = lines[0]
    for line in lines[1:]:
        text += f" {line}" if text.endswith(":") else f"; {line}"
    return text


def _quiet_icechunk() -> None:
    # Icechunk's Rust log warns about local storage on every repository; a command
    # line should print only its own results.
    try:
        import icechunk
    except ImportError:
        return
    icechunk.set_logs_filter("error")


def _virtualize(args: argparse.Namespace) -> None:
    from vzxarray.mfdataset import open_virtual_mfdataset

    remote_out = is_object_store_url(args.out)
    urls, registry = expand_inputs(
        args.inputs, _remote_options(args), also=[args.out] if remote_out else []
    )
    start = time.perf_counter()
    dataset = open_virtual_mfdataset(
        urls,
        registry=registry,
        combine="nested" if args.concat_dim else "by_coords",
        concat_dim=args.concat_dim,
        parallel=args.parallel,
        loadable_variables=args.loadable,
        on_error="skip" if args.skip_bad else "raise",
    )
    opened = time.perf_counter() - start
    write_store(dataset, args.out, args.format, registry)
    skipped = dataset.attrs.get("vz_skipped_files", [])
    print(
        f"virtualized {len(urls) - len(skipped)} file(s) in {opened:.2f} s; wrote {args.format} "
        f"to {args.out} in {time.perf_counter() - start - opened:.2f} s"
    )
    for url in skipped:
        print(f"skipped: {url}")


def expand_inputs(
    inputs: Sequence[str], remote: dict[str, Any], *, also: Sequence[str] = ()
) -> tuple[list[str], vc.ObjectStoreRegistry]:
    """The URLs of ``inputs`` (paths, URLs, globs), and a registry for them and ``also``.

    A local glob is matched by `glob`. A cloud URL (``s3://``, ``gs://``, ``az://``...)
    whose key holds ``*``, ``?`` or ``[`` is a glob over the keys listed under its
    folder, each ``*`` within one ``/``-separated part as in a local glob. ``remote``
    holds `ObjectStoreRegistry.for_urls` keywords (endpoint, region, ...).

    Raises
    ------
    VirtualizationError
        A glob matches nothing, or the listing failed (naming the URL).
    """
    from vzxarray.mfdataset import expand_paths

    patterns = {item for item in inputs if _is_object_glob(item)}
    literal = [url for item in inputs if item not in patterns for url in expand_paths(item)]
    buckets = [_split_object_url(item)[0] + "/" for item in patterns]
    registry = vc.ObjectStoreRegistry.for_urls([*literal, *buckets, *also], **remote)
    urls: list[str] = []
    for item in inputs:
        urls.extend(_matching(item, registry) if item in patterns else expand_paths(item))
    return urls, registry


def _split_object_url(text: str) -> tuple[str, str]:
    """``("s3://bucket", key)`` of a cloud URL, the key as written (a glob, unescaped)."""
    scheme, _, rest = text.partition("://")
    bucket, _, key = rest.partition("/")
    return f"{scheme.lower()}://{bucket}", key


def _is_object_glob(text: str) -> bool:
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    return scheme in _LISTABLE and any(c in _split_object_url(text)[1] for c in "*?[")


_LISTABLE = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "azure")


def _matching(pattern: str, registry: vc.ObjectStoreRegistry) -> list[str]:
    """The object URLs ``pattern`` (a cloud URL with a glob in its key) matches, sorted."""
    from vzcore.byteranges import source

    bucket, key = _split_object_url(pattern)
    glob_at = min(key.find(c) for c in "*?[" if c in key)
    folder = key[: key.rfind("/", 0, glob_at) + 1]  # "" or "data/"
    listed = source(registry, vc.registry.normalize_url(f"{bucket}/{folder}"))
    base = listed.path.strip("/")  # the folder's path in its store
    found = []
    for path in listed.list().column("path").to_pylist():
        relative = path[len(base) :].lstrip("/") if base else path
        name = folder + relative
        if name.count("/") == key.count("/") and fnmatch.fnmatchcase(name, key):
            found.append(vc.registry.normalize_url(f"{bucket}/{quote_path(name)}"))
    if not found:
        raise vc.VirtualizationError(f"no objects match {pattern!r}")
    return sorted(found)


def write_store(dataset: Any, out: str, format: str, registry: vc.ObjectStoreRegistry) -> None:
    """Write a virtual dataset in one of `FORMATS`; a failure leaves the previous output.

    Every output may go to an object-store URL ``registry`` covers (see
    `vzcore.writers._atomic` and `write_icechunk_repository`).
    """
    if format == "kerchunk-json":
        dataset.vz.to_kerchunk(out, format="json", registry=registry)
    elif format == "kerchunk-parquet":
        dataset.vz.to_kerchunk(out, format="parquet", registry=registry)
    elif format == "manifest-parquet":
        vc.write_manifest_parquet(dataset.vz.to_virtual_group(), out, registry=registry)
    else:
        write_icechunk_repository(dataset, out, registry)


def write_icechunk_repository(dataset: Any, out: str, registry: vc.ObjectStoreRegistry) -> Any:
    """Commit ``dataset`` to the Icechunk repository at ``out``; returns the repository.

    An existing repository gets a new snapshot on ``main`` replacing what it held (its
    virtual chunk containers extended to the registry's prefixes); a failure commits
    nothing, so the previous snapshot stays the branch tip. Otherwise the repository is
    built beside ``out`` and renamed into place when committed (on an object store:
    built locally, then put under ``out`` with its ``repo`` object last): a failure
    leaves nothing that would block a rerun.

    Raises
    ------
    WriteError
        ``out`` is something other than a repository or an empty folder (prefix), or
        storage failed (a full disk, no permission, a failed upload).
    """
    import icechunk

    if is_object_store_url(out):
        return _write_remote_icechunk(dataset, out, registry)
    target = local_target(out)
    storage = icechunk.local_filesystem_storage(str(target.absolute()))
    if target.is_dir() and any(target.iterdir()):
        if not icechunk.Repository.exists(storage):
            raise WriteError(
                target, "it exists and is not an Icechunk repository; choose another --out"
            )
        config = icechunk.Repository.fetch_config(storage) or icechunk.RepositoryConfig.default()
        credentials = _declare_containers(config, registry)
        repository = icechunk.Repository.open(
            storage, config, authorize_virtual_chunk_access=credentials
        )
        _commit(repository, dataset, target)
        repository.save_config()  # the new containers, once their references are committed
        return repository
    if target.exists() and not target.is_dir():
        raise WriteError(
            target, "it exists and is not an Icechunk repository; choose another --out"
        )
    with staged_output(target) as built:
        _commit(create_icechunk_repository(str(built), registry), dataset, target)
    return icechunk.Repository.open(
        storage,
        authorize_virtual_chunk_access=_declare_containers(
            icechunk.RepositoryConfig.default(), registry
        ),
    )


def _write_remote_icechunk(dataset: Any, out: str, registry: vc.ObjectStoreRegistry) -> Any:
    """`write_icechunk_repository` for an object-store URL ``out``."""
    import icechunk

    try:
        storage = icechunk_storage(out, registry)
        exists = icechunk.Repository.exists(storage)
    except (vc.VirtualizationError, icechunk.IcechunkError, OSError, ValueError) as err:
        raise WriteError(out, error_line(err)) from err
    if exists:
        try:
            config = icechunk.Repository.fetch_config(storage)
            config = config or icechunk.RepositoryConfig.default()
            credentials = _declare_containers(config, registry)
            repository = icechunk.Repository.open(
                storage, config, authorize_virtual_chunk_access=credentials
            )
        except (icechunk.IcechunkError, OSError, ValueError) as err:
            raise WriteError(out, f"{error_line(err)}; nothing was committed") from err
        _commit(repository, dataset, out)
        try:
            repository.save_config()  # the new containers, once their references are committed
        except (icechunk.IcechunkError, OSError) as err:
            raise WriteError(
                out,
                "the snapshot was committed, but saving the repository's virtual chunk "
                f"containers failed ({error_line(err)}); rerun to save them",
            ) from err
        return repository
    # A new repository is built locally and put with its root object, "repo", last:
    # a reader finds no repository until it is whole.
    with staged_folder_upload(object_target(out, registry), marker="repo") as built:
        _commit(create_icechunk_repository(str(built), registry), dataset, out)
    try:
        return icechunk.Repository.open(
            storage,
            authorize_virtual_chunk_access=_declare_containers(
                icechunk.RepositoryConfig.default(), registry
            ),
        )
    except (icechunk.IcechunkError, OSError) as err:
        raise WriteError(out, f"it was written, but cannot be opened: {error_line(err)}") from err


def _commit(repository: Any, dataset: Any, target: str | Path) -> None:
    import icechunk

    session = repository.writable_session("main")
    try:
        dataset.vz.to_icechunk(session.store, mode="w")
        metadata = icechunk_commit_metadata(dataset.vz.to_virtual_group())
        session.commit("virtual references written by vz", metadata=metadata)
    except WriteError as err:
        cause = err.__cause__ or err
        raise WriteError(target, f"{error_line(cause)}; nothing was committed") from err
    except (OSError, icechunk.IcechunkError) as err:
        raise WriteError(target, f"{error_line(err)}; nothing was committed") from err


def create_icechunk_repository(path: str, registry: vc.ObjectStoreRegistry) -> Any:
    """A local Icechunk repository with a virtual chunk container per registry prefix."""
    import icechunk

    config = icechunk.RepositoryConfig.default()
    credentials = _declare_containers(config, registry)
    return icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(Path(path).absolute())),
        config,
        authorize_virtual_chunk_access=credentials,
    )


def _declare_containers(config: Any, registry: vc.ObjectStoreRegistry) -> dict[str, Any]:
    """Add a virtual chunk container per registry prefix to ``config``; their credentials."""
    import icechunk

    credentials: dict[str, Any] = {}
    for prefix in registry.prefixes:
        container: Any
        if prefix.startswith("file://"):
            store = icechunk.local_filesystem_store(prefix.removeprefix("file://"))
            container = icechunk.VirtualChunkContainer(prefix, store)
            credentials[prefix] = icechunk.Credentials.LocalFileSystemAccess()
        elif prefix.startswith("s3://") and (s3 := _s3_store(registry, prefix)) is not None:
            # The registry's region and endpoint, so Icechunk itself reads the chunks.
            container, credentials[prefix] = s3_virtual_chunk_container(prefix, s3)
        else:
            raise vc.VirtualizationError(
                f"icechunk output for {prefix!r} needs a container this command cannot declare; "
                "write it from Python with your own repository config"
            )
        config.set_virtual_chunk_container(container)
    result: dict[str, Any] = icechunk.containers_credentials(credentials)
    return result


def _s3_store(registry: vc.ObjectStoreRegistry, prefix: str) -> Any:
    """The obstore ``S3Store`` the registry reads ``prefix`` with, or None (a reader of
    another kind)."""
    from obstore.store import S3Store

    reader, _ = registry.resolve(prefix)
    store = reader.store if isinstance(reader, vc.registry.ObstoreReader) else None
    return store if isinstance(store, S3Store) else None


def _remote_options(args: argparse.Namespace) -> dict[str, Any]:
    """``ObjectStoreRegistry.for_urls`` keywords from ``--endpoint``, ``--region``..."""
    options: dict[str, Any] = {"anonymous": args.anonymous}
    for name in ("endpoint", "region", "retries", "timeout"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def _open_store(
    store: str,
    branch: str | None,
    tag: str | None,
    snapshot_id: str | None,
    remote: dict[str, Any] | None = None,
) -> tuple[vc.VirtualGroup, str]:
    """The group a store holds (an Icechunk repository at the version asked), and its title."""
    from vzcore.parsers import IcechunkParser, detect_parser

    url = vc.registry.normalize_url(store)
    registry = vc.ObjectStoreRegistry.for_urls([url], **(remote or {}))
    parser = detect_parser(url, registry)
    title = url
    if isinstance(parser, IcechunkParser):
        parser = IcechunkParser(branch=branch, tag=tag, snapshot_id=snapshot_id)
        title = f"{url} (Icechunk repository, {parser.version})"
    elif branch is not None or tag is not None or snapshot_id is not None:
        raise vc.VirtualizationError(
            f"{url}: --branch, --tag and --snapshot choose a version of an Icechunk "
            f"repository; this store is read by {type(parser).__name__}"
        )
    return parser(url, registry), title


def _info(
    store: str,
    *,
    branch: str | None = None,
    tag: str | None = None,
    snapshot_id: str | None = None,
    plot: str | None = None,
    variable: str | None = None,
    remote: dict[str, Any] | None = None,
) -> None:
    group, title = _open_store(store, branch, tag, snapshot_id, remote)
    print(describe_group(group, title))
    if plot is not None:
        name, array = _plotted_array(group, variable, title)
        figure = vc.plot_chunks(array, name=name)
        try:
            figure.savefig(plot, dpi=120)
        except OSError as err:
            raise vc.WriteError(plot, str(err)) from err
        print(f"chunk map of {name} written to {plot}")
    elif variable is not None:
        raise vc.VirtualizationError("--variable chooses what --plot draws: give --plot OUT.png")


def _plotted_array(
    group: vc.VirtualGroup, variable: str | None, title: str
) -> tuple[str, vc.VirtualArray]:
    """The array ``--variable`` names, or the virtual array with the most chunks."""
    virtual = [(p, a) for p, a in group.walk_arrays() if isinstance(a, vc.VirtualArray)]
    if variable is None:
        if not virtual:
            raise vc.VirtualizationError(f"{title}: no virtual array to draw")
        return max(virtual, key=lambda item: item[1].manifest.n_chunks)
    found = dict(virtual)
    if variable not in found:
        raise vc.VirtualizationError(
            f"{title}: no virtual array {variable!r} to draw (virtual arrays: {sorted(found)})"
        )
    return variable, found[variable]


def _verify(
    store: str,
    *,
    branch: str | None = None,
    tag: str | None = None,
    snapshot_id: str | None = None,
    remote: dict[str, Any] | None = None,
) -> int:
    group, title = _open_store(store, branch, tag, snapshot_id, remote)
    urls = sorted(set(referenced_paths(group)) | set(recorded_sources(group)))
    result = vc.verify(group, vc.ObjectStoreRegistry.for_urls(urls, **(remote or {})))
    print(title)
    print(result)
    if result.with_status("changed", "missing", "unreadable"):
        return 1
    return 3 if result.with_status("unrecorded") else 0


def describe_group(group: vc.VirtualGroup, title: str) -> str:
    """A text summary: per array shape, dims, dtype, chunks, references, files, bytes, codecs."""
    lines = [title]
    files: set[str] = set()
    total_refs = total_missing = total_inline = total_bytes = 0
    for path, array in group.walk_arrays():
        meta = array.metadata
        dims = ", ".join(str(d) for d in meta.dimension_names or ()) or "-"
        head = f"  {path}: {meta.dtype} {meta.shape} dims ({dims}) {describe_grid(meta.chunk_grid)}"
        if isinstance(array, vc.LoadedArray):
            lines.append(f"{head} in memory ({array.nbytes} bytes)")
            continue
        manifest = array.manifest
        used = referenced_paths(manifest)  # not the dictionary: it may hold unused paths
        files.update(used)
        total_refs += manifest.n_chunks - manifest.n_missing - manifest.n_inline
        total_missing += manifest.n_missing
        total_inline += manifest.n_inline
        total_bytes += manifest.referenced_nbytes
        inline = (
            f", {manifest.n_inline} inline ({manifest.inline_nbytes} bytes)"
            if manifest.n_inline
            else ""
        )
        lines.append(
            f"{head}\n    {manifest.n_chunks} chunks ({manifest.n_missing} missing{inline}) in "
            f"{len(used)} file(s), {manifest.referenced_nbytes} bytes referenced, "
            f"codecs [{', '.join(map(str, meta.codecs))}]"
        )
    inline_total = f", {total_inline} inline chunks" if total_inline else ""
    lines.append(
        f"total: {total_refs} references, {total_missing} missing chunks{inline_total}, "
        f"{len(files)} distinct file(s), {total_bytes} bytes referenced"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
