"""Photos citizens attach to the problems they report:

    POST /api/v1/citizens/me/photos        the image as the body (JPEG, PNG, WebP); citizen keys
    GET  /api/v1/citizen-photos/{name}     the citizen who took it, and staff who may see a case
                                           it was filed with; 404 for everyone else

The answer's `url` (absolute, from the address the request came to) is what the report sends
as Open311 `media_url`. The checks of the body are those of work-order evidence
(`cityops.api.images`); a citizen may send MAX_PER_DAY photos a day.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cityops.api import images
from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.incidents import READ, _visible_incident
from cityops.api.serve_util import is_citizen
from cityops.domain.access import Role
from cityops.serve.report_photos import (
    MAX_PER_DAY,
    NAME,
    PATH,
    Photo,
    ReportPhotos,
    file_of,
    name_for,
)


def photos_of(request: Request) -> ReportPhotos:
    node = request.app.state.node
    return ReportPhotos(node.store, node.clock)


async def post_photo(request: Request) -> Response:
    who = await principal(request, {Role.CITIZEN})
    if not who.name:
        raise ApiError(403, "this citizen key names no citizen, so its photos would be no "
                            "one's")
    image = await images.read_image(request)
    photos = photos_of(request)
    name = name_for(who.name, image.body, image.ext)
    path = file_of(request.app.state.node.settings.data_dir, name)
    if await photos.get(name) is None:
        if await photos.sent_today(who.name) >= MAX_PER_DAY:
            raise ApiError(409, f"at most {MAX_PER_DAY} photos a day may be sent; try again "
                                "tomorrow")
        # The file first: a record always names a photo that is there.
        images.save(path, image.body)
        await photos.keep(who.name, name, Photo(type=image.media, bytes=len(image.body)))
    elif not path.is_file():  # the record outlived its file (a restored store): put it back
        images.save(path, image.body)
    url = str(request.base_url).rstrip("/") + PATH + name
    return json_response({"url": url, "bytes": len(image.body), "type": image.media}, 201,
                         {"Location": url})


async def get_photo(request: Request) -> Response:
    who = await principal(request, READ | {Role.CITIZEN})
    name = request.path_params["name"]
    found = await photos_of(request).get(name) if NAME.match(name) else None
    if found is None or not await _may_see(request, who, *found):
        raise ApiError(404, f"no photo {name!r}")
    path = file_of(request.app.state.node.settings.data_dir, name)
    if not path.is_file():
        raise ApiError(404, f"no photo {name!r}")
    return images.image_response(path)


async def _may_see(request: Request, who, owner: str, photo: Photo) -> bool:
    if who.role is Role.CITIZEN:
        return is_citizen(who, owner)
    for incident_id in photo.incidents:
        try:
            await _visible_incident(request, who, incident_id)
            return True
        except ApiError as error:
            if error.status != 404:
                raise
    return False
