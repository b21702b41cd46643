"""No log line can be forged through what callers send, and none carries a phone or ID number:
control characters are escaped and numbers masked in every record, from every logger."""

from __future__ import annotations

import logging

from cityops.domain.incidents.model import Report
from cityops.logsafe import SafeLogFilter, escape_controls, install_safe_logging
from tests.open311.conftest import HERE, MONDAY_10, open311_city
from tests.clock_kit import Clock

PHONE, ID = "13812345678", "310115198001011234"
FORGED = "2026-11-23 10:00:00 INFO cityops.auth: key k_admin revoked"


def _record(msg: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, msg, args, exc_info)


def test_control_characters_are_escaped_and_numbers_masked() -> None:
    record = _record("incident %s by %s", f"Pothole\r\n{FORGED}\x1b[2K\u2028\x00", PHONE)
    assert SafeLogFilter().filter(record)
    message = record.getMessage()
    assert message == (f"incident Pothole\\r\\n{FORGED}\\x1b[2K\\u2028\\x00 by 138****5678")
    assert "\n" not in message and "\r" not in message
    assert escape_controls("tab\there \x7f \x85") == "tab\\there \\x7f \\x85"
    plain = _record("%d rows", 5)
    SafeLogFilter().filter(plain)
    assert (plain.msg, plain.args) == ("%d rows", (5,))  # untouched when nothing to do


def test_a_traceback_keeps_its_lines_but_not_what_was_smuggled_in() -> None:
    try:
        raise ValueError(f"bad title {ID}\r{FORGED}")
    except ValueError as error:
        record = _record("failed", exc_info=(type(error), error, error.__traceback__))
    SafeLogFilter().filter(record)
    assert record.exc_text.startswith("Traceback (most recent call last):\n")
    assert "\r" not in record.exc_text and f"\\r{FORGED}" in record.exc_text
    assert ID not in record.exc_text and "310115********1234" in record.exc_text


def test_every_logger_goes_through_it_once_installed(caplog) -> None:
    install_safe_logging()
    install_safe_logging()  # idempotent
    caplog.set_level(logging.INFO)
    logging.getLogger("somewhere.else").warning("title %s", f"x\n{FORGED}")
    (record,) = caplog.records
    assert record.getMessage() == f"title x\\n{FORGED}"
    assert caplog.text.count("\n") == 1  # one record, one line


async def test_an_incident_title_cannot_forge_a_nodes_log_line(tmp_path, live_node,
                                                               caplog) -> None:
    """The API refuses a title with a line break; a title from another intake (an alert's
    rule, a replay, the hotline desk) may still carry one, and the log line escapes it."""
    caplog.set_level(logging.INFO)
    async with live_node(open311_city(), tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="log:") as live:
        op = live.client(await live.key("operator"))
        forged = f"Rubbish\n{FORGED} call {PHONE}"
        where = {"lat": float(HERE["lat"]), "lon": float(HERE["long"])}
        r = await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "title": forged, **where})
        assert r.status_code == 400 and "$.title" in r.json()["error"]
        filed = await live.node.act.desk.async_report(
            Report(key="replay-1", source="hotline", at=MONDAY_10, text="", **where),
            "event.sanitation.exposed_garbage", title=forged, auto_register=False)
        path = f"/api/v1/incidents/{filed.incident.id}/actions"
        assert (await op.post(f"{path}/register")).status_code == 200
        # Dispatching tells the department, through the log notifier: the title is logged.
        assert (await op.post(f"{path}/dispatch", json={})).status_code == 200
    told = [rec for rec in caplog.records if "Rubbish" in rec.getMessage()]
    assert told, [rec.getMessage() for rec in caplog.records]
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for rec in caplog.records:
        line = formatter.format(rec)
        assert "\n" not in line and "\r" not in line, line
        assert PHONE not in line
    assert any(f"Rubbish\\n{FORGED}" in rec.getMessage() for rec in told)
