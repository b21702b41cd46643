"""Photos citizens attach to the problems they report:

    POST /api/v1/citizens/me/photos        the image as the body (JPEG, PNG, WebP); citizen keys
    GET  /api/v1/citizen-photos/{name}     the citizen who took it, and staff who may see a case
                                           it was filed with; 404 for everyone else

The answer's `url` is what the report sends as Open311 `media_url`: absolute when the node has
a `public_base_url`, else a path on this node. It is never built from the request's Host
header, which the client writes: a forged one would otherwise end up in public Open311
requests, pointing their readers anywhere. The checks of the body are those of work-order
evidence (`cityops.api.images`); a citizen may send MAX_PER_DAY photos a day.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from cityops.api import images
from cityops.api.errors import ApiError
from cityops.api.limits import PHOTO_BODY
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Reply, Scope
from cityops.api.serve_util import actor_of, is_citizen
from cityops.domain.access import Role
from cityops.domain.incidents.workflow import OutOfScope
from cityops.serve.report_photos import (
    MAX_PER_DAY,
    NAME,
    PATH,
    Photo,
    ReportPhotos,
    file_of,
    name_for,
)

IMAGE = {"type": "string", "format": "binary"}
# Staff who read cases (the photos of the ones their key covers).
READ = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION, Role.FIELD})


class Uploaded(msgspec.Struct):
    url: str
    bytes: int
    type: str


class Found(msgspec.Struct):
    owner: str
    photo: Photo


def photos_of(call: Call[Any, Any]) -> ReportPhotos:
    node = call.node
    return ReportPhotos(node.store, node.clock)


def photo_url(call: Call[Any, Any], name: str) -> str:
    return call.node.settings.public_base_url.rstrip("/") + PATH + name


async def post_photo(call: Call[None, NoQuery]) -> Reply:
    who = call.principal
    if not who.name:
        raise ApiError(403, "this citizen key names no citizen, so its photos would be no "
                            "one's")
    image = await images.read_image(call)
    photos = photos_of(call)
    name = name_for(who.name, image.body, image.ext)
    path = file_of(call.node.settings.data_dir, name)
    if await photos.get(name) is None:
        if await photos.sent_today(who.name) >= MAX_PER_DAY:
            raise ApiError(409, f"at most {MAX_PER_DAY} photos a day may be sent; try again "
                                "tomorrow")
        # The file first: a record always names a photo that is there.
        images.save(path, image.body)
        await photos.keep(who.name, name, Photo(type=image.media, bytes=len(image.body)))
    elif not path.is_file():  # the record outlived its file (a restored store): put it back
        images.save(path, image.body)
    url = photo_url(call, name)
    return Reply(Uploaded(url, len(image.body), image.media), 201, {"Location": url})


async def load_photo(call: Call[Any, Any]) -> Found | None:
    name = call.path["name"]
    found = await photos_of(call).get(name) if NAME.match(name) else None
    return Found(*found) if found is not None else None


async def sees_photo(call: Call[Any, Any], found: Found) -> bool:
    """The citizen who took it; staff who may see one of the cases it was filed with."""
    who = call.principal
    if who.role is Role.CITIZEN:
        return is_citizen(who, found.owner)
    act = call.node.act
    if act is None:
        return False
    actor = actor_of(who)
    for incident_id in found.photo.incidents:
        inc = await call.node.store.get_incident(incident_id)
        if inc is None:
            continue
        try:
            act.rules.check_scope(inc, actor)
        except OutOfScope:
            continue
        return True
    return False


PHOTO = Guard("citizen_photo", "name", load_photo, sees_photo)


async def get_photo(call: Call[None, NoQuery]) -> Response:
    name = call.path["name"]
    path = file_of(call.node.settings.data_dir, name)
    if not path.is_file():
        raise ApiError(404, f"no citizen_photo {name!r}")
    return images.image_response(path)


ROUTES = [
    Endpoint("POST", "/api/v1/citizens/me/photos", post_photo,
             "Send a photo of a problem to report (JPEG, PNG or WebP as the body); the url "
             "answered goes in the report's media_url", frozenset({Role.CITIZEN}), Scope.OWN,
             raw_body=True, body_limit=PHOTO_BODY,
             request_content={media: IMAGE for media in images.TYPES}, response=Uploaded,
             status=201, errors=(409, 415)),
    Endpoint("GET", "/api/v1/citizen-photos/{name}", get_photo,
             "A citizen's report photo: for the citizen who took it and staff who may see a "
             "case it was filed with", READ | {Role.CITIZEN}, Scope.RECORD, guard=PHOTO,
             media_type="image/*"),
]
