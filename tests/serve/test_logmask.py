"""Phone and ID numbers never reach a log line: not the notifier's, not anyone's, not in a
traceback."""

from __future__ import annotations

import logging

from cityops.serve.logmask import MaskingFilter, install_log_masking

PHONE, ID = "13812345678", "310115198001011234"


def test_the_filter_masks_message_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "caller %s, id %s", (PHONE, ID),
                               None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "caller 138****5678, id 310115********1234"
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError as error:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (),
                                   (type(error), error, error.__traceback__))
    MaskingFilter().filter(record)
    assert "138****5678" in record.exc_text and PHONE not in record.exc_text
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "%d rows", (5,), None)
    MaskingFilter().filter(plain)
    assert plain.msg == "%d rows" and plain.args == (5,)  # untouched when nothing to mask


def test_every_logger_is_masked_once_installed(caplog) -> None:
    install_log_masking()
    install_log_masking()  # idempotent
    caplog.set_level(logging.INFO)
    logging.getLogger("somewhere.else").info("call %s about %s", PHONE, ID)
    try:
        raise RuntimeError(f"citizen {PHONE}")
    except RuntimeError:
        logging.getLogger("cityops.x").exception("oops")
    assert PHONE not in caplog.text and ID not in caplog.text
    assert "138****5678" in caplog.text and "310115********1234" in caplog.text


async def test_a_nodes_notices_to_phones_are_masked_in_its_log(tmp_path, grid_pack, live_node,
                                                               caplog) -> None:
    caplog.set_level(logging.INFO, logger="cityops")
    async with live_node(grid_pack, tmp_path / "data", notify_url="log:") as live:
        admin = live.client(await live.key("admin"))
        r = await admin.post("/api/v1/cabinets", json={
            "id": "cab-1", "name": "Lobby", "centre": "Centre 1", "compartments": 2})
        assert r.status_code == 201
        r = await admin.post("/api/v1/cabinets/cab-1/dropoff", json={"phone": PHONE})
        assert r.status_code == 201
        code = r.json()["code"]
        r = await admin.post("/api/v1/hotline/orders", json={
            "type": "help", "title": f"call {PHONE}", "phone": PHONE,
            "department": "sanitation" if any(d.code == "sanitation"
                                               for d in grid_pack.departments) else ""})
        assert r.status_code == 201
    lines = [rec.getMessage() for rec in caplog.records]
    assert any("cabinet.dropoff to 138****5678" in line for line in lines), lines
    assert not any(PHONE in line for line in lines)
    assert not any(code in line for line in lines)  # the code goes by SMS, never to the log
