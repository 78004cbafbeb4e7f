"""What waits in the inbox: scanning, routing to a dataset, safe names and paths.

Layout: ``<data root>/inbox/<department>/<file>``; the catalog routes a file to its dataset
by the department and the file name. Every entry found is either routed or carries the
reason it cannot be (``InboxFile.problem``), so the pipeline ledgers and archives it either
way and nothing waits in the inbox for ever:
- a name that is not valid UTF-8 (GBK bytes from a Windows share) is renamed to its GB18030
  reading, or to an escaped form that is then refused as an unsafe name;
- symbolic links are never followed (a link may point anywhere): refused, and removed;
- anything that is not a regular file (a FIFO, a socket) is refused; a file outside a
  department folder is refused.
Files whose name starts with ``.`` or ends in ``.part`` / ``.tmp`` are still being written.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from foundation.catalog import Catalog
from foundation.settings import Settings

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f;|&$`<>\\]")
NO_DEPARTMENT = "-"  # the ledger's department for a file outside every department folder


class UnsafePathError(ValueError):
    """A path from a feed or a task argument points outside the inbox or looks like an attack."""


@dataclass(frozen=True)
class InboxFile:
    relpath: str  # relative to the inbox, forward slashes
    department: str
    dataset_id: str | None  # None when the file cannot be routed
    problem: str | None = None  # reason code when it cannot
    message: str = ""


def unsafe_name_reason(name: str) -> str | None:
    if _UNSAFE_NAME.search(name):
        return f"file name {name!r} contains control or shell characters"
    if name in {".", ".."} or name.startswith("-"):
        return f"file name {name!r} is not a plain file name"
    return None


def lexical_inbox_path(settings: Settings, relpath: str) -> Path:
    """``relpath`` under the inbox, without following links: refuses absolute paths and ``..``."""
    pure = PurePosixPath(relpath)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise UnsafePathError(f"refusing path {relpath!r}: it must be relative to the inbox, without '..'")
    return settings.inbox / pure


def inbox_path(settings: Settings, relpath: str) -> Path:
    """Resolve a path relative to the inbox, refusing anything that escapes it or is not a plain file."""
    path = lexical_inbox_path(settings, relpath)
    inbox = settings.inbox.resolve()
    if path.is_symlink() or not path.resolve().is_relative_to(inbox):
        raise UnsafePathError(f"refusing path {relpath!r}: it is a link or resolves outside the inbox")
    if not path.is_file():
        raise UnsafePathError(f"{relpath!r} is not a regular file in the inbox")
    return path.resolve()


def readable_name(name: str) -> str:
    """A file name as received, readable: GBK/GB18030 bytes decoded, other bad bytes escaped."""
    raw = os.fsencode(name)
    try:
        raw.decode("utf-8")
        return name
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def _free_name(folder: str, name: str) -> str:
    """``name``, or ``stem~2.ext``, ``stem~3.ext`` ... whichever is not taken in ``folder``."""
    stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    candidate, n = name, 1
    while os.path.lexists(os.path.join(folder, candidate)):
        n += 1
        candidate = f"{stem}~{n}{dot}{ext}"
    return candidate


def _rename_unreadable(inbox: Path) -> None:
    """Give every entry whose name is not valid UTF-8 its readable name (``~2`` added when taken)."""
    for folder, dirs, files in os.walk(inbox, topdown=True, followlinks=False):
        for names in (dirs, files):
            for i, name in enumerate(names):
                if readable_name(name) == name:
                    continue
                new = _free_name(folder, readable_name(name))
                try:
                    os.rename(os.path.join(folder, name), os.path.join(folder, new))
                    names[i] = new
                except OSError:
                    pass  # another process took it meanwhile (or renamed it first): next scan


def _waiting(name: str) -> bool:
    return name.startswith(".") or name.endswith((".part", ".tmp"))


def _not_a_file(path: Path) -> tuple[str, str] | None:
    """(reason, message) for an entry that is not a regular file, without following links."""
    if path.is_symlink():
        return ("unsafe_link", f"'{path.name}' is a symbolic link to '{os.readlink(path)}': links are not "
                               "followed; send the file itself")
    mode = path.lstat().st_mode
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return "not_a_regular_file", f"'{path.name}' is not a regular file (a pipe, socket or device)"
    return None


def _route(catalog: Catalog, relpath: str, department: str, name: str) -> InboxFile:
    if why := unsafe_name_reason(name):
        return InboxFile(relpath, department, None, "unsafe_file_name", why)
    if department not in catalog.departments:
        return InboxFile(relpath, department, None, "unknown_dataset",
                         f"folder '{department}' is not a department of the catalog")
    matches = catalog.route(department, name)
    if len(matches) == 1:
        return InboxFile(relpath, department, matches[0].id)
    which = ", ".join(d.id for d in matches) or "none"
    return InboxFile(relpath, department, None, "unknown_dataset",
                     f"'{name}' from {department} matches datasets: {which}")


def scan_inbox(settings: Settings, catalog: Catalog) -> list[InboxFile]:
    """Every entry waiting in the inbox, with its dataset or the reason it has none."""
    inbox = settings.inbox
    if not inbox.is_dir():
        return []
    _rename_unreadable(inbox)
    found: list[InboxFile] = []
    for top in sorted(inbox.iterdir()):
        if _waiting(top.name) or readable_name(top.name) != top.name:
            continue
        if problem := _not_a_file(top):
            found.append(InboxFile(top.name, NO_DEPARTMENT, None, *problem))
        elif not top.is_dir():
            found.append(InboxFile(top.name, NO_DEPARTMENT, None, "unknown_dataset",
                                   f"'{top.name}' is not in a department folder: put it in inbox/<department>/"))
        else:
            found += _scan_department(catalog, inbox, top)
    # The register first (later files are checked against it); repairs, which name records of other
    # datasets, after the files that may carry them.
    return sorted(found, key=lambda f: catalog.load_rank(f.dataset_id))


def received_before(settings: Settings, files: list[InboxFile], cutoff: datetime | None) -> list[InboxFile]:
    """The files whose receipt (the file's mtime, what the loader records) lies before ``cutoff``: an
    Airflow run takes what had arrived by the end of its data interval. ``cutoff`` None: all of them."""
    if cutoff is None:
        return list(files)
    limit = cutoff.timestamp()
    return [f for f in files if (settings.inbox / f.relpath).lstat().st_mtime < limit]


MAX_STAGE_TASKS = 16  # an ingest run maps its files over at most this many stage tasks


def stage_groups(relpaths: list[str], most: int = MAX_STAGE_TASKS) -> list[list[str]]:
    """The files in order, in at most ``most`` groups of near-equal size (one file each when few)."""
    size = -(-len(relpaths) // most) if relpaths else 1
    return [relpaths[i:i + size] for i in range(0, len(relpaths), size)]


def _scan_department(catalog: Catalog, inbox: Path, folder: Path) -> list[InboxFile]:
    department = folder.name
    found: list[InboxFile] = []
    for parent, dirs, files in os.walk(folder, topdown=True, followlinks=False):
        dirs.sort()
        for name in list(dirs):  # a linked folder is refused as a whole, never entered
            if (Path(parent) / name).is_symlink():
                dirs.remove(name)
                files.append(name)
        for name in sorted(files):
            path = Path(parent) / name
            if _waiting(name) or readable_name(name) != name:
                continue  # still being written, or not renamed yet (the next scan does)
            relpath = path.relative_to(inbox).as_posix()
            if problem := _not_a_file(path):
                found.append(InboxFile(relpath, department, None, *problem))
            else:
                found.append(_route(catalog, relpath, department, name))
    return found
