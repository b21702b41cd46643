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
from starlette.responses import FileResponse, Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.incidents import ACT, READ, _visible_incident
from cityops.domain.access import Role

MAX_PHOTO_BYTES = 8 << 20
MAX_PHOTOS_PER_ORDER = 20
TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MEDIA = {ext: media for media, ext in TYPES.items()}
NAME = re.compile(r"^[0-9a-f]{24}\.(jpg|png|webp)$")
ORDER = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def _magic_ok(ext: str, body: bytes) -> bool:
    """The bytes are the image type they claim, so nothing else is served back as one."""
    if ext == "jpg":
        return body[:3] == b"\xff\xd8\xff"
    if ext == "png":
        return body[:8] == b"\x89PNG\r\n\x1a\n"
    return body[:4] == b"RIFF" and body[8:12] == b"WEBP"


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
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    ext = TYPES.get(media)
    if ext is None:
        raise ApiError(415, f"a photo must be sent as one of {', '.join(TYPES)}, not "
                            f"{media or 'no Content-Type'}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_PHOTO_BYTES:
        raise ApiError(413, f"a photo may be at most {MAX_PHOTO_BYTES >> 20} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PHOTO_BYTES:
            raise ApiError(413, f"a photo may be at most {MAX_PHOTO_BYTES >> 20} MiB")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body or not _magic_ok(ext, body):
        raise ApiError(400, f"the body is not a {media} image")
    name = f"{hashlib.sha256(body).hexdigest()[:24]}.{ext}"
    path = folder / name
    if not path.exists():
        existing = list(folder.glob("*")) if folder.is_dir() else []
        if len(existing) >= MAX_PHOTOS_PER_ORDER:
            raise ApiError(409, f"work order {order_id} already has {MAX_PHOTOS_PER_ORDER} "
                                "photos")
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(body)
        partial.replace(path)  # whole or not at all: a reader never sees half a photo
    url = f"/api/v1/work-orders/{order_id}/photos/{name}"
    return json_response({"url": url, "bytes": len(body), "type": media}, 201,
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
    return FileResponse(path, media_type=MEDIA[name.rsplit(".", 1)[1]],
                        headers={"Cache-Control": "private, max-age=86400",
                                 "X-Content-Type-Options": "nosniff"})
