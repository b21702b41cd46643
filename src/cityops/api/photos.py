"""Evidence photos of work orders, kept in the node's data folder:

    POST /api/v1/work-orders/{order_id}/photos          the image as the body (JPEG, PNG, WebP)
    GET  /api/v1/work-orders/{order_id}/photos/{name}   one photo, for keys that see the case

The answer's `id` is what a report or `finish` cites in `photos` (see `cityops.act.evidence`);
its `url` starts with the node's configured public base URL, never with the Host header a
client sent. Whoever speaks for the order may add a photo (a field key: only to an order
assigned or offered to it); whoever may see the case may read them. Sizes are bounded per photo
and per order, so a phone cannot fill the disk.
"""

from __future__ import annotations


import msgspec
from starlette.responses import Response

from cityops.act import evidence
from cityops.api import images
from cityops.api.errors import ApiError
from cityops.api.incidents import ACT, ORDER, ORDER_CASE, READ, Found
from cityops.api.limits import PHOTO_BODY
from cityops.api.route import Call, Endpoint, NoQuery, Reply, Scope

IMAGE = {"type": "string", "format": "binary"}


class Uploaded(msgspec.Struct):
    id: str  # cite it in a report's or a move's `photos`
    url: str
    bytes: int
    type: str


async def post_photo(call: Call[None, NoQuery]) -> Reply:
    node = call.node
    order = call.record.order
    image = await images.read_image(call)
    name = evidence.name_for(order.id, image.body, image.ext)
    folder = evidence.folder_of(node.settings.data_dir, order.id)
    path = folder / name
    if not path.exists():
        if images.kept(folder) >= evidence.MAX_PER_ORDER:
            raise ApiError(409, f"work order {order.id} already has {evidence.MAX_PER_ORDER} "
                                "photos")
        # The file first: a record always names a photo that is there.
        images.save(path, image.body)
    photos = evidence.EvidencePhotos(node.store, node.clock)
    if await photos.get(name) is None:
        await photos.keep(evidence.uploader(call.principal), name, evidence.OrderPhoto(
            order=order.id, type=image.media, bytes=len(image.body)))
    url = node.settings.public_base_url.rstrip("/") + evidence.path_of(order.id, name)
    return Reply(Uploaded(name, url, len(image.body), image.media), 201, {"Location": url})


async def get_photo(call: Call[None, NoQuery]) -> Response:
    found: Found = call.record
    name = call.path["name"]
    path = evidence.folder_of(call.node.settings.data_dir, found.order.id) / name
    if not evidence.NAME.match(name) or not path.is_file():
        raise ApiError(404, f"no photo {name!r}")
    return images.image_response(path)


ROUTES = [
    Endpoint("POST", "/api/v1/work-orders/{order_id}/photos", post_photo,
             "Upload an evidence photo (JPEG, PNG or WebP, at most 8 MiB); cite the answer's "
             "id in `finish` photos", ACT, Scope.RECORD, guard=ORDER, raw_body=True,
             body_limit=PHOTO_BODY, request_content={media: IMAGE for media in images.TYPES},
             response=Uploaded, status=201, errors=(409, 415)),
    Endpoint("GET", "/api/v1/work-orders/{order_id}/photos/{name}", get_photo,
             "One evidence photo of a work order, for keys that may see its case", READ,
             Scope.RECORD, guard=ORDER_CASE, media_type="image/*",
             examples={"name": "0" * 24 + ".png"}),
]
