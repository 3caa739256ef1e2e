"""Reading documents in a worker process with a time limit.

A hostile or pathological file (a PDF whose page tree loops, an image that
decompresses for minutes, a scan that OCR grinds through) must not hold up the
tenant's run, and a parser stuck in C code cannot be interrupted from Python.
So documents are read in one worker process, started on first use and reused
(the OCR engine loads once); a document that takes longer than the limit is
quarantined as ``timeout``, the worker is killed, and the next document gets a
fresh one.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType

from supplier_docs.reading import ReadDocument, Rejected, read_document

# spawn, not fork: the caller is a Dagster run with threads of its own.
_CONTEXT = mp.get_context("spawn")
STARTUP_SECONDS = 120


def _serve(conn: Connection) -> None:
    """The worker: say it is ready (its imports done), then read each (bytes, name,
    max_pages) sent and answer with the result."""
    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        data, name, max_pages = request
        try:
            conn.send(("ok", read_document(data, name, max_pages=max_pages)))
        except Rejected as exc:
            conn.send(("rejected", exc.reason, exc.detail))
        except Exception as exc:  # the parent quarantines it, naming the kind of failure
            conn.send(("error", type(exc).__name__, str(exc)[:500]))


class DocumentReadError(Exception):
    """The reader failed in a way that is not a known rejection (a parser bug)."""


class TimedReader:
    """``read(data, name)`` as :func:`read_document`, but in a worker process and
    within ``seconds``; a context manager that stops the worker on exit."""

    def __init__(self, *, seconds: float, max_pages: int) -> None:
        self.seconds = seconds
        self.max_pages = max_pages
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._conn is None:
            parent, child = _CONTEXT.Pipe()
            process = _CONTEXT.Process(target=_serve, args=(child,), daemon=True)
            process.start()
            child.close()
            self._process, self._conn = process, parent
            # Starting the worker is not the document's time: wait for it apart.
            try:
                ready = parent.poll(STARTUP_SECONDS) and parent.recv() == ("ready",)
            except EOFError:  # it died on its imports
                ready = False
            if not ready:
                self._stop()
                raise DocumentReadError(f"the reading process did not start in {STARTUP_SECONDS} s")
        return self._conn

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        self._process = self._conn = None

    def read(self, data: bytes, name: str) -> ReadDocument:
        conn = self._start()
        conn.send((data, name, self.max_pages))
        if not conn.poll(self.seconds):
            self._stop()
            raise Rejected(
                "timeout",
                f"not read within {self.seconds:g} s (BIZOS_MAX_DOCUMENT_SECONDS)",
            )
        try:
            answer = conn.recv()
        except EOFError:  # the worker died (out of memory, a crash in C code)
            self._stop()
            raise DocumentReadError("the reading process died") from None
        if answer[0] == "ok":
            document: ReadDocument = answer[1]
            return document
        if answer[0] == "rejected":
            raise Rejected(answer[1], answer[2])
        raise DocumentReadError(f"{answer[1]}: {answer[2]}")

    def __enter__(self) -> TimedReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()
