import msgspec
import pytest

from cityops.ingest.decode import BodyError, decode_array, decode_body, decode_ndjson


def enc(x) -> bytes:
    return msgspec.json.encode(x)


GOOD = {"device_id": "noise-000001", "ts": "2024-05-26T23:10:00Z", "value": 61.5}


def test_a_good_batch_decodes_whole():
    readings, rejected = decode_array(enc([GOOD, {**GOOD, "ts": 1716765000.25}]))
    assert rejected == []
    assert [i for i, _ in readings] == [0, 1]
    assert readings[1][1].ts == 1716765000.25


def test_single_object_is_one_reading():
    readings, rejected = decode_array(enc(GOOD))
    assert len(readings) == 1 and rejected == []


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({**GOOD, "value": "loud"}, "Expected `float | null`, got `str`"),
        ({**GOOD, "value": True}, "got `bool`"),
        ({**GOOD, "ts": "2024-05-26T23:10:00"}, "timezone"),
        ({**GOOD, "ts": "yesterday"}, "Invalid RFC3339"),
        ({"ts": 1716765000, "value": 1}, "missing required field `device_id`"),
        ({**GOOD, "device_id": 17}, "Expected `str`, got `int`"),
        ({**GOOD, "values": {"pm25": "x"}}, "got `str`"),
        (42, "Expected `object`, got `int`"),
    ],
)
def test_each_bad_element_is_rejected_by_index_and_the_rest_kept(bad, reason):
    body = enc([GOOD, bad, GOOD])
    readings, rejected = decode_array(body)
    assert [i for i, _ in readings] == [0, 2]
    assert len(rejected) == 1 and rejected[0].index == 1
    assert reason in rejected[0].error


def test_non_json_bodies_are_refused_whole_with_a_reason():
    for body in (b"not json", b"[1, 2", b"", b"17"):
        with pytest.raises(BodyError, match="not a JSON array"):
            decode_array(body)
    with pytest.raises(BodyError, match="not valid JSON"):
        decode_array(b'{"device_id": ')


def test_ndjson_reports_bad_lines_by_line_number():
    body = enc(GOOD) + b"\n" + b"{oops\n" + b"\n" + enc({**GOOD, "value": "x"}) + b"\n" + enc(GOOD)
    readings, rejected = decode_ndjson(body)
    assert [i for i, _ in readings] == [0, 4]
    assert [r.index for r in rejected] == [1, 3]
    assert "malformed JSON" in rejected[0].error


def test_ndjson_fast_path_and_content_type_dispatch():
    body = b"\n".join(enc({**GOOD, "value": v}) for v in range(5)) + b"\n"
    readings, rejected = decode_body(body, "application/x-ndjson")
    assert len(readings) == 5 and rejected == []
    readings, rejected = decode_body(enc([GOOD]), "application/json; charset=utf-8")
    assert len(readings) == 1
