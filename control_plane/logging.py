"""JSON log lines with the request id of the request being served.

One line per record: time, level, logger, message, request_id, plus the structured fields passed
through `extra=` (method, path, status, latency_ms, ...). Request and response bodies are never
logged: they hold customer text and audio. Credentials that libraries may log on their own (a
WebSocket client's `?api_key=` in a DEBUG handshake line, an Authorization header) are redacted
from every line, whatever logger wrote it. While the app serves, a thread formats and writes the
lines (`LineWriter`): the event loop only makes the record.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import logging
import math
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Each pattern runs only on a line holding its literal (in the lowercased line where the pattern ignores case;
# "_key=", not "api_key=": ignoring case, the pattern's "i" also matches "İ" and "ı"), so a line with nothing to
# redact costs a lowercase copy and three substring checks instead of three regex scans.
_SECRETS = [
    ("_key=", True, re.compile(r"(api_key=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
    ("bearer", True, re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1[redacted]"),
    # `tts_` first (the regex engine then looks for that literal), the word boundary behind it
    ("tts_", False, re.compile(r"tts_(?<=\btts_)[A-Za-z0-9_-]{20,}"), "tts_[redacted]"),
]


_QUIET_LIBRARIES = ("aiosqlite", "sqlalchemy", "asyncpg", "websockets", "httpcore", "hpack", "multipart",
                     "python_multipart", "grpc", "redis", "urllib3", "botocore", "PIL")


def redact(line: str) -> str:
    lower = line.lower()
    for literal, any_case, pattern, replacement in _SECRETS:
        if literal in (lower if any_case else line):
            line = pattern.sub(replacement, line)
    return line


# Attributes every LogRecord has; anything else was passed through `extra=` and is emitted as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)  # json.dumps(default=str, ensure_ascii=False), built once


class JsonFormatter(logging.Formatter):
    _second: tuple[int, str] = (-1, "")  # the last second formatted, as "YYYY-MM-DDTHH:MM:SS"

    def timestamp(self, created: float) -> str:
        """`created` as ISO 8601 UTC to the millisecond (what `datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")` gives), the date and time formatted once per second."""
        fraction, whole = math.modf(created)  # rounded to the microsecond as datetime rounds it
        second, micro = divmod(round(fraction * 1_000_000), 1_000_000)
        second += int(whole)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        return f"{cached[1]}.{micro // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "") or request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = self.formatException(record.exc_info)
        return redact(_ENCODER.encode(out))


def log_fields(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, message, extra=fields)` without finding the caller's file and line, which no line
    shows: for the line written per request."""
    if logger.isEnabledFor(level):
        logger.handle(logger.makeRecord(logger.name, level, "", 0, message, (), None, extra=fields))


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    # Stamped when the record is made: a handler that formats later still knows the request.
    record = _base_factory(*args, **kwargs)
    rid = request_id_var.get()
    if rid:
        record.request_id = rid
    return record


class LineWriter(logging.Handler):
    """The root logger's handler: JSON lines on a stream. While `writing_in_background()` holds it (the app's
    lifespan does), a record is queued and a thread of its own formats and writes it, the lines that came
    together in one write: the event loop pays only for making the record, and a burst of requests is answered
    before its lines are written. Outside that (startup, shutdown, tools) a record is written at once; stopping
    writes every record queued before it. The record carries its request id from when it was made."""

    BATCH = 256  # lines in one write at most
    PACE_S = 0.01  # after a write, the thread waits this long before the next (a line is late by that at most)

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.setFormatter(JsonFormatter())
        self._queue: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._holders = 0

    def emit(self, record: logging.LogRecord) -> None:  # called holding self.lock (Handler.handle)
        if self._thread is not None:
            if record.args:  # its message as it reads now: the arguments may change before the thread formats it
                try:
                    record.msg, record.args = record.getMessage(), None
                except Exception:
                    self.handleError(record)
                    return
            self._queue.put(record)
            return
        try:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)

    def start(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._holders += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_queued, name="log-writer", daemon=True)
                self._thread.start()

    def stop(self, last: bool = False) -> None:
        """One holder done (`last`: all of them, at exit); with none left, the thread writes what was queued and
        ends, and records are written at once again."""
        with self.lock:  # type: ignore[union-attr]
            self._holders = 0 if last else max(0, self._holders - 1)
            thread = self._thread
            if self._holders or thread is None:
                return
            self._thread = None
            self._queue.put(None)  # after every record queued: emit queues only while _thread is set, under the lock
        thread.join()

    def _write_queued(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for record in batch:
                if record is not None:
                    try:
                        lines.append(self.format(record) + "\n")
                    except Exception:
                        self.handleError(record)
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except Exception:
                for record in batch:
                    if record is not None:
                        self.handleError(record)
            if None in batch:
                return
            time.sleep(self.PACE_S)  # let the next lines gather: one wake-up and one write for all of them


def _writer() -> LineWriter | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, LineWriter)), None)


@contextlib.contextmanager
def writing_in_background() -> Iterator[None]:
    """Log lines formatted and written by a thread while this is held (see LineWriter); all written on exit."""
    writer = _writer()
    if writer is not None:
        writer.start()
    try:
        yield
    finally:
        if writer is not None:
            writer.stop()


def _stop_writers() -> None:
    writer = _writer()
    if writer is not None:
        writer.stop(last=True)


atexit.register(_stop_writers)  # a process that ends without its lifespan's shutdown still writes its lines


def configure_logging(level: str = "INFO") -> None:
    """Route the root logger (and uvicorn's) to one JSON LineWriter on stderr; idempotent."""
    if logging.getLogRecordFactory() is not _record_with_request_id:
        logging.setLogRecordFactory(_record_with_request_id)
    # No line shows the process, thread or process name: records skip looking them up (getpid is a system call).
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    root = logging.getLogger()
    if _writer() is None:
        root.addHandler(LineWriter(sys.stderr))
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # Uvicorn's access log would duplicate the middleware's request lines (without request ids);
    # httpx logs every Triton health and metrics poll at INFO.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # LOG_LEVEL=DEBUG/INFO are for this service's own code: these libraries log SQL parameters, message
    # bodies or headers at DEBUG, which would carry customer data.
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn").setLevel(max(logging.INFO, root.level))  # its DEBUG shows WebSocket frames
