"""Photos sent as a request's raw body (JPEG, PNG or WebP) and kept on the node's disk: the one
set of checks behind every upload (work-order evidence, citizens' report photos) and the one
way they are served back.

A photo is refused before it is kept if its declared type is not an image type we serve (415),
if it is larger than MAX_BYTES, declared or streamed (413), or if its bytes are not the image
type it claims (400), so nothing else is ever served back under an image type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from starlette.responses import FileResponse

from cityops.api.errors import ApiError
from cityops.api.limits import PHOTO_BODY
from cityops.api.route import Call

MAX_BYTES = PHOTO_BODY
TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MEDIA = {ext: media for media, ext in TYPES.items()}
EXTENSIONS = "|".join(MEDIA)


class Image(NamedTuple):
    body: bytes
    media: str  # "image/png"
    ext: str  # "png"


def _magic_ok(ext: str, body: bytes) -> bool:
    if ext == "jpg":
        return body[:3] == b"\xff\xd8\xff"
    if ext == "png":
        return body[:8] == b"\x89PNG\r\n\x1a\n"
    return body[:4] == b"RIFF" and body[8:12] == b"WEBP"


def _too_big() -> ApiError:
    return ApiError(413, f"a photo may be at most {MAX_BYTES >> 20} MiB")


async def read_image(call: Call[Any, Any]) -> Image:
    """The request's body as a checked image. The type is checked before a byte is read, and
    the body is read within the route's limit (MAX_BYTES, declared or streamed: 413) and the
    node's body deadline (408): a client that sends no Content-Length, a false one, or its
    bytes one by one cannot make the node hold more, or wait longer."""
    media = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    ext = TYPES.get(media)
    if ext is None:
        raise ApiError(415, f"a photo must be sent as one of {', '.join(TYPES)}, not "
                            f"{media or 'no Content-Type'}")
    try:
        body = await call.raw_body()
    except ApiError as error:
        if error.status == 413:
            raise _too_big() from None
        raise
    if not body or not _magic_ok(ext, body):
        raise ApiError(400, f"the body is not a {media} image")
    return Image(body, media, ext)


def save(path: Path, body: bytes) -> None:
    """Whole or not at all: a reader (or a crash) never leaves half a photo under its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(body)
    partial.replace(path)


def kept(folder: Path) -> int:
    """Photos kept in a folder (a write in progress is not one)."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix != ".part")


def image_response(path: Path) -> FileResponse:
    """A kept photo, typed by its name; never sniffed into anything else by a browser, and
    kept by the browser only (it is not public)."""
    return FileResponse(path, media_type=MEDIA[path.suffix.lstrip(".")],
                        headers={"Cache-Control": "private, max-age=86400",
                                 "X-Content-Type-Options": "nosniff"})
