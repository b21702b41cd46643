"""Evidence photos of work orders, kept in the node's data folder:

    POST /api/v1/work-orders/{order_id}/photos          the image as the body (JPEG, PNG, WebP)
    GET  /api/v1/work-orders/{order_id}/photos/{name}   one photo, for keys that see the case

The answer's `url` is what `finish` takes in `photos`. Whoever may act on the order may add a
photo (a field key: only to an order assigned or offered to it); whoever may see the case may
read them. Sizes are bounded per photo and per order, so a phone cannot fill the disk.
"""

from __future__ import annotations

import hashlib
import re

from starlette.requests import Request
from starlette.responses import Response

from cityops.api import images
from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.incidents import ACT, READ, _visible_incident
from cityops.domain.access import Role

MAX_PHOTOS_PER_ORDER = 20
NAME = re.compile(rf"^[0-9a-f]{{24}}\.({images.EXTENSIONS})$")
ORDER = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def _folder(request: Request, order_id: str):
    if not ORDER.match(order_id):
        raise ApiError(404, f"no work order {order_id!r}")
    return request.app.state.node.settings.data_dir / "photos" / order_id


async def _order_of(request: Request, who, order_id: str):
    inc = await _visible_incident(request, who, order_id.rsplit("-", 1)[0])
    for order in inc.orders:
        if order.id == order_id:
            return inc, order
    raise ApiError(404, f"no work order {order_id!r}")


async def post_photo(request: Request) -> Response:
    who = await principal(request, ACT)
    order_id = request.path_params["order_id"]
    folder = _folder(request, order_id)
    _, order = await _order_of(request, who, order_id)
    if who.role is Role.FIELD and order.assignee != who.name and not (
            order.offer is not None and order.offer.staff_id == who.name):
        raise ApiError(403, f"work order {order_id} is not assigned or offered to {who.name}")
    image = await images.read_image(request)
    name = f"{hashlib.sha256(image.body).hexdigest()[:24]}.{image.ext}"
    path = folder / name
    if not path.exists():
        if images.kept(folder) >= MAX_PHOTOS_PER_ORDER:
            raise ApiError(409, f"work order {order_id} already has {MAX_PHOTOS_PER_ORDER} "
                                "photos")
        images.save(path, image.body)
    url = f"/api/v1/work-orders/{order_id}/photos/{name}"
    return json_response({"url": url, "bytes": len(image.body), "type": image.media}, 201,
                         {"Location": url})


async def get_photo(request: Request) -> Response:
    who = await principal(request, READ)
    order_id, name = request.path_params["order_id"], request.path_params["name"]
    folder = _folder(request, order_id)
    if not NAME.match(name):
        raise ApiError(404, f"no photo {name!r}")
    await _order_of(request, who, order_id)
    path = folder / name
    if not path.is_file():
        raise ApiError(404, f"no photo {name!r}")
    return images.image_response(path)
