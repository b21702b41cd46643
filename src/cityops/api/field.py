"""The field page's own calls:

    GET  /api/v1/staff/me             the person behind a field key: id, name, status, position
    POST /api/v1/staff/me/position    the phone reports where they are

A field key may not write readings (its person's GPS device is the one that does), but the
field page can read the phone's own position when the person allows it. This turns that into
one reading of the person's GPS device and sends it through the normal intake, so it is stored,
deduplicated, seen by detection and by the staff board exactly as the tracker's fixes are.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.domain.access import Role
from cityops.ingest.decode import Reading


class PositionIn(msgspec.Struct, forbid_unknown_fields=True):
    lat: float
    lon: float
    accuracy: float | None = None  # metres, as the browser reports it
    speed: float | None = None  # m/s, as the browser reports it
    heading: float | None = None  # degrees from north


MAX_ACCURACY_M = 500.0  # a fix vaguer than this would put the person in the wrong village


def _person(node, who):
    person = next((s for s in node.pack.staff if s.id == who.name), None)
    if person is None:
        raise ApiError(404, f"this key's name {who.name!r} is no field person of this city")
    return person


async def get_me(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, {Role.FIELD})
    person = _person(node, who)
    board = node.act.staff if node.act is not None else None
    where = next((p for p in board.positions() if p["id"] == person.id), None) if board else None
    return json_response({
        "id": person.id, "name": person.name, "department": person.department,
        "home_area": person.home_area, "skills": person.skills,
        "status": board.status[person.id].value if board else "available",
        "lat": where["lat"] if where else None, "lon": where["lon"] if where else None,
        "at": where["at"] if where else None})


async def post_my_position(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, {Role.FIELD})
    person = _person(node, who)
    try:
        body = msgspec.json.decode(await request.body(), type=PositionIn)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise ApiError(400, f"invalid body: {error}") from None
    if not (-90 <= body.lat <= 90 and -180 <= body.lon <= 180):
        raise ApiError(400, f"({body.lat}, {body.lon}) is not a place on Earth")
    if body.accuracy is not None and body.accuracy > MAX_ACCURACY_M:
        raise ApiError(422, f"a fix accurate to {body.accuracy:.0f} m is too vague to use "
                            f"(at most {MAX_ACCURACY_M:.0f} m)")
    values = {"lat": body.lat, "lon": body.lon}
    if body.speed is not None and body.speed >= 0:
        values["speed"] = round(body.speed * 3.6, 2)
    if body.heading is not None and 0 <= body.heading <= 360:
        values["heading"] = body.heading
    node.ingestor.admit()
    result = await node.ingestor.ingest(
        [(0, Reading(person.device_id, ts=node.clock(), values=values))], source="field")
    if result.rejected:
        raise ApiError(422, result.rejected[0].error)
    return json_response({"device_id": person.device_id, "accepted": result.accepted,
                          "lat": body.lat, "lon": body.lon}, 202)
