"""Which tenants have an inbox, and which of their export files may be read.

Tenants write the inbox (an upload service, an SFTP drop, an unpacked archive),
so nothing in it is trusted. A folder name must be a tenant id (the one rule in
``core.tenancy``); a symlink or a hard link is never followed, since it could
point at another tenant's inbox; a file still being written is left for the next
run; a file over ``max_export_bytes`` is refused unread. Files are opened one
path component at a time with ``O_NOFOLLOW`` and compared with what was listed,
so swapping a folder for a symlink between listing and reading is caught too.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from core.settings import Settings
from core.tenancy import TENANT_ID_RULE, is_tenant_id

log = logging.getLogger(__name__)

EXPORT_FOLDER = "crm"
"""A tenant's CRM exports live in ``<inbox>/<tenant>/crm/*.csv``."""


@dataclass(frozen=True)
class InboxNotice:
    """Something in the inbox that was not read, and why (for logs and metadata)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class InboxScan:
    tenants: list[str] = field(default_factory=list)
    refused: list[InboxNotice] = field(default_factory=list)


@dataclass(frozen=True)
class ExportFile:
    """A listed export: its identity is kept so the file opened is the file listed."""

    name: str
    size: int
    device: int
    inode: int


@dataclass
class TenantExports:
    """A tenant's exports for one run."""

    files: list[ExportFile] = field(default_factory=list)
    """Readable files, in name order (a later file's row wins a tie)."""
    too_large: list[ExportFile] = field(default_factory=list)
    """Over ``max_export_bytes``: quarantined as files, never read."""
    skipped: list[InboxNotice] = field(default_factory=list)
    """Not read this run, not an error: empty, still uploading, or refused (links)."""


class InboxChanged(RuntimeError):
    """The file opened is not the file listed (swapped for a link meanwhile)."""


def scan_inbox(settings: Settings) -> InboxScan:
    """Tenant folders of the inbox; folders that cannot be a tenant are reported."""
    scan = InboxScan()
    root = settings.inbox_dir
    if not root.is_dir():
        return scan
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            scan.refused.append(InboxNotice(entry.name, "a symlink, not followed"))
        elif not entry.is_dir(follow_symlinks=False):
            scan.refused.append(InboxNotice(entry.name, "not a folder"))
        elif not is_tenant_id(entry.name):
            scan.refused.append(
                InboxNotice(entry.name, f"not a valid tenant id ({TENANT_ID_RULE})")
            )
        else:
            scan.tenants.append(entry.name)
    return scan


def tenants_with_inbox(settings: Settings) -> list[str]:
    """Valid tenant folders; the others are logged as warnings and left alone."""
    scan = scan_inbox(settings)
    for notice in scan.refused:
        log.warning("inbox folder skipped: %s", notice)
    return scan.tenants


def _folder_problem(path: Path, shown: str) -> InboxNotice | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return InboxNotice(shown, "a symlink, not followed: no export of this tenant is read")
    if not stat.S_ISDIR(st.st_mode):
        return InboxNotice(shown, "not a folder")
    return None


def _shown(tenant_id: str, folder: str, name: str = "") -> str:
    return "/".join(p for p in (tenant_id, folder, name) if p)


def tenant_exports(
    settings: Settings,
    tenant_id: str,
    *,
    now: float | None = None,
    folder: str = EXPORT_FOLDER,
    names: Callable[[str], bool] = lambda name: name.endswith(".csv"),
) -> TenantExports:
    """List ``<inbox>/<tenant>/<folder>/`` files whose name ``names`` accepts (the CRM
    exports by default; ``folder=""`` is the tenant's own folder) without following
    any link."""
    now = time.time() if now is None else now
    found = TenantExports()
    tenant_dir = settings.tenant_inbox(tenant_id)
    path = tenant_dir / folder if folder else tenant_dir
    checks = [(tenant_dir, tenant_id)] + ([(path, _shown(tenant_id, folder))] if folder else [])
    for checked, shown in checks:
        problem = _folder_problem(checked, shown)
        if problem:
            found.skipped.append(problem)
            return found
    if not path.is_dir():
        return found
    # Belt and braces: no component above was a link, so the real path must be
    # the tenant's own folder under the real inbox.
    if path.resolve() != (settings.inbox_dir.resolve() / tenant_id / folder).resolve():
        found.skipped.append(InboxNotice(tenant_id, "resolves outside the tenant's inbox"))
        return found
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if not names(entry.name):
            continue
        shown = _shown(tenant_id, folder, entry.name)
        st = entry.stat(follow_symlinks=False)
        reason = file_problem(st, settings, now)
        if entry.name.startswith("."):
            reason = "a hidden file (an upload's temporary name?)"
        if reason:
            found.skipped.append(InboxNotice(shown, reason))
            continue
        listed = ExportFile(entry.name, st.st_size, st.st_dev, st.st_ino)
        if st.st_size > settings.max_export_bytes:
            found.too_large.append(listed)
        else:
            found.files.append(listed)
    return found


def file_problem(
    st: os.stat_result, settings: Settings, now: float, *, empty_is_skipped: bool = True
) -> str | None:
    """Why a listed inbox entry is not read this run, or None when it may be.

    An empty file is an upload in progress for an export; supplier documents pass
    ``empty_is_skipped=False`` and quarantine it once it has settled.
    """
    if stat.S_ISLNK(st.st_mode):
        return "a symlink, not followed"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink > 1:
        return f"has {st.st_nlink} hard links; an inbox file must be a file of its own"
    if st.st_size == 0 and empty_is_skipped:
        return "empty (an upload in progress?); read at a later run"
    age = now - st.st_mtime
    if age < settings.inbox_settle_seconds:
        return f"modified {max(age, 0):.1f}s ago (still uploading?); read at a later run"
    return None


@contextmanager
def open_export(
    settings: Settings, tenant_id: str, listed: ExportFile, *, folder: str = EXPORT_FOLDER
) -> Iterator[BinaryIO]:
    """Open a listed export (of ``tenant_exports(..., folder=folder)``) for reading,
    following no link on the way.

    Raises InboxChanged if any component is now a link or the file is another one.
    """
    with open_inbox_file(settings, (tenant_id, *([folder] if folder else [])), listed) as fh:
        yield fh


@contextmanager
def open_inbox_file(
    settings: Settings, folders: Sequence[str], listed: ExportFile
) -> Iterator[BinaryIO]:
    """Open ``<inbox>/<folders...>/<listed.name>``, following no link on the way.

    Raises InboxChanged if any component is now a link or the file is another one.
    """
    shown = "/".join((*folders, listed.name))
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fds: list[int] = []
    try:
        fds.append(os.open(settings.inbox_dir, os.O_RDONLY | os.O_DIRECTORY))
        for part in folders:
            fds.append(os.open(part, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        fd = os.open(listed.name, flags, dir_fd=fds[-1])
    except OSError as exc:
        raise InboxChanged(
            f"{shown}: cannot be opened without following a link ({exc.strerror})"
        ) from None
    finally:
        for opened in fds:
            os.close(opened)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (listed.device, listed.inode) or not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InboxChanged(f"{shown}: changed while listed")
    with os.fdopen(fd, "rb", buffering=1 << 20) as fh:
        yield fh
