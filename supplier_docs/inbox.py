"""Which supplier documents a tenant's inbox holds, listed without trusting it.

``<inbox>/<tenant>/suppliers/<supplier_id>/<file>``: the rules of the export
inbox (``exports.inbox``) hold here too. No symlink or hard link is followed, a
file still being written is left for the next run, the file opened must be the
file listed. A folder name that cannot be a supplier id, a stray file directly
under ``suppliers/`` or a sub-folder of a supplier's folder is reported and
skipped, never guessed at.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.contracts.supplier_docs import SUPPLIER_ID_RULE, SUPPLIERS_FOLDER, is_supplier_id
from core.settings import Settings
from exports.inbox import ExportFile, InboxNotice, file_problem


@dataclass(frozen=True)
class ListedDocument:
    supplier_id: str
    file: ExportFile

    @property
    def path(self) -> str:
        """Relative to the tenant's inbox: ``suppliers/<supplier_id>/<name>``."""
        return f"{SUPPLIERS_FOLDER}/{self.supplier_id}/{self.file.name}"


@dataclass
class SupplierInbox:
    documents: list[ListedDocument] = field(default_factory=list)
    skipped: list[InboxNotice] = field(default_factory=list)


def _is_link_or_not_dir(path: Path) -> str | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "a symlink, not followed: no document of this tenant is read"
    if not stat.S_ISDIR(st.st_mode):
        return "not a folder"
    return None


def supplier_documents(
    settings: Settings, tenant_id: str, *, now: float | None = None
) -> SupplierInbox:
    """The tenant's readable supplier documents, by supplier then name."""
    now = time.time() if now is None else now
    found = SupplierInbox()
    tenant_dir = settings.tenant_inbox(tenant_id)
    root = tenant_dir / SUPPLIERS_FOLDER
    for path, shown in ((tenant_dir, tenant_id), (root, f"{tenant_id}/{SUPPLIERS_FOLDER}")):
        problem = _is_link_or_not_dir(path)
        if problem:
            found.skipped.append(InboxNotice(shown, problem))
            return found
    if not root.is_dir():
        return found
    if root.resolve() != settings.inbox_dir.resolve() / tenant_id / SUPPLIERS_FOLDER:
        found.skipped.append(InboxNotice(tenant_id, "resolves outside the tenant's inbox"))
        return found
    for folder in sorted(os.scandir(root), key=lambda e: e.name):
        shown = f"{tenant_id}/{SUPPLIERS_FOLDER}/{folder.name}"
        if folder.name.startswith("."):
            continue
        if folder.is_symlink():
            found.skipped.append(InboxNotice(shown, "a symlink, not followed"))
        elif not folder.is_dir(follow_symlinks=False):
            found.skipped.append(
                InboxNotice(shown, "a file outside any supplier folder (suppliers/<id>/…)")
            )
        elif not is_supplier_id(folder.name):
            reason = f"not a valid supplier id ({SUPPLIER_ID_RULE})"
            found.skipped.append(InboxNotice(shown, reason))
        else:
            _list_supplier(settings, folder.name, Path(folder.path), shown, now, found)
    return found


def _list_supplier(
    settings: Settings,
    supplier_id: str,
    folder: Path,
    shown_folder: str,
    now: float,
    found: SupplierInbox,
) -> None:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        shown = f"{shown_folder}/{entry.name}"
        st = entry.stat(follow_symlinks=False)
        if entry.name.startswith("."):
            reason: str | None = "a hidden file (an upload's temporary name?)"
        elif entry.is_dir(follow_symlinks=False):
            reason = "a sub-folder; documents go directly in the supplier's folder"
        else:
            reason = file_problem(st, settings, now, empty_is_skipped=False)
        if reason:
            found.skipped.append(InboxNotice(shown, reason))
            continue
        listed = ExportFile(entry.name, st.st_size, st.st_dev, st.st_ino)
        found.documents.append(ListedDocument(supplier_id, listed))


def inbox_fingerprint(settings: Settings, tenant_id: str, *, now: float | None = None) -> str:
    """A digest of the tenant's readable supplier documents (path, size, mtime).

    Changes when a settled document arrives, changes or goes; a file still
    uploading is not listed, so it changes the digest only once it settles.
    Empty when the tenant has no documents.
    """
    listing = supplier_documents(settings, tenant_id, now=now)
    if not listing.documents:
        return ""
    digest = hashlib.sha256()
    root = settings.tenant_inbox(tenant_id)
    for listed in listing.documents:
        try:
            mtime = os.stat(root / listed.path, follow_symlinks=False).st_mtime_ns
        except FileNotFoundError:
            continue
        digest.update(f"{listed.path}\0{listed.file.size}\0{mtime}\n".encode())
    return digest.hexdigest()[:16]
