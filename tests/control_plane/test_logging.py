"""JSON log lines (control_plane/logging.py): what a line holds, what is redacted from it, and the writer thread
that takes formatting and writing off the event loop without losing or reordering a line."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import UTC, datetime

import pytest

from control_plane.logging import JsonFormatter, LineWriter, log_fields, redact, request_id_var

KEY = "tts_" + "Ab3-_x" * 7


@pytest.mark.parametrize(("line", "kept", "gone"), [
    (f"GET /v1/synthesize/ws?api_key={KEY}&x=1", "api_key=[redacted]&x=1", KEY),
    (f"GET /ws?API_KEY={KEY}", "API_KEY=[redacted]", KEY),
    (f"authorization: Bearer {KEY}", "Bearer [redacted]", KEY),
    ("authorization: BEARER\tsecret.token", "BEARER\t[redacted]", "secret.token"),
    (f'{{"path": "/v1/text-to-speech/{KEY}"}}', "/v1/text-to-speech/tts_[redacted]", KEY),
])
def test_secrets_are_redacted_wherever_they_appear(line: str, kept: str, gone: str) -> None:
    out = redact(line)
    assert kept in out and gone not in out


def test_a_line_without_secrets_is_left_as_it_is() -> None:
    line = '{"logger": "tts_gateway.http", "message": "request", "path": "/v1/xtts_voice_abcdefghijklmnopqrstuvw"}'
    assert redact(line) == line  # "tts_" inside a word is not a key; the logger's name is not one either


def test_the_time_is_iso_8601_utc_to_the_millisecond() -> None:
    formatter = JsonFormatter()
    # ends of seconds, half-microseconds (rounded as datetime rounds them), and the same second twice (cached)
    for created in (1765000000.0, 1765000000.9999995, 1765000000.0004995, 1765000000.1234, 1765000000.999,
                    1765000001.5, 1457990809.3339994, 1814724575.7999995):
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert formatter.timestamp(created) == expected, created


def _logger(stream: io.StringIO) -> tuple[logging.Logger, LineWriter]:
    writer = LineWriter(stream)
    logger = logging.getLogger(f"test.lines.{id(stream)}")
    logger.handlers[:] = [writer]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, writer


def test_a_line_holds_the_request_id_and_the_fields_passed() -> None:
    stream = io.StringIO()
    logger, _ = _logger(stream)
    token = request_id_var.set("rid-1")
    try:
        log_fields(logger, logging.INFO, "request", {"method": "POST", "route": "/v1/x", "status": 503,
                                                      "tenant_id": None, "latency_ms": 0.2})
    finally:
        request_id_var.reset(token)
    line = json.loads(stream.getvalue())
    assert line["message"] == "request" and line["request_id"] == "rid-1" and line["level"] == "INFO"
    assert (line["method"], line["route"], line["status"], line["tenant_id"]) == ("POST", "/v1/x", 503, None)
    log_fields(logger, logging.DEBUG, "below the level", {})
    assert "below the level" not in stream.getvalue()


def test_the_writer_thread_writes_every_line_in_order_and_all_of_them_when_stopped() -> None:
    stream = io.StringIO()
    logger, writer = _logger(stream)
    writer.start()
    mutable = ["before"]
    logger.info("value %s", mutable)  # formatted as it was when logged
    mutable[0] = "after"
    threads = [threading.Thread(target=lambda n=n: [logger.info("t%d-%d", n, i) for i in range(200)]) for n in range(3)]
    for i in range(500):
        logger.info("line %d", i, extra={"n": i})
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.stop()  # writes what was queued before it returns
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "value ['before']"
    assert [line["n"] for line in lines if "n" in line] == list(range(500))
    for n in range(3):
        assert [line["message"] for line in lines if line["message"].startswith(f"t{n}-")] == \
            [f"t{n}-{i}" for i in range(200)]
    assert len(lines) == 1 + 500 + 600
    logger.info("after the thread")  # written at once again
    assert stream.getvalue().splitlines()[-1].endswith('"message": "after the thread"}')


def test_the_thread_runs_while_any_holder_holds_it() -> None:
    stream = io.StringIO()
    logger, writer = _logger(stream)
    writer.start()
    writer.start()  # a second app's lifespan in the same process
    writer.stop()
    logger.info("still queued")
    writer.stop()
    assert "still queued" in stream.getvalue()
    writer.start()
    logger.info("at exit")
    writer.stop(last=True)
    assert "at exit" in stream.getvalue()


def test_a_record_whose_arguments_do_not_fit_its_message_does_not_break_the_caller(capsys) -> None:
    stream = io.StringIO()
    logger, writer = _logger(stream)
    writer.start()
    logger.info("%d items", "not a number")  # reported by logging's handleError, as the stdlib handlers do
    logger.info("next")
    writer.stop()
    assert stream.getvalue().splitlines()[-1].endswith('"message": "next"}')
    assert "not a number" in capsys.readouterr().err
