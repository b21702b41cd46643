"""JSON and XML the way GeoReport v2 writes them.

The format is the resource's extension (`services.json`, `requests/123.xml`). JSON lists are
bare arrays; XML wraps the same items in a root element named by the spec (`<services>`,
`<service_requests>`, `<errors>`), nested lists in a plural element of singular children
(`<attributes><attribute>`, `<values><value>`). Errors are `[{"code", "description"}]` /
`<errors><error>` with the HTTP status repeated in `code`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from starlette.responses import Response

FORMATS = ("json", "xml")
# XML is the spec's required format: a resource asked for in neither gets its error in XML.
DEFAULT_FORMAT = "xml"
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

ITEM_TAGS = {"attributes": "attribute", "values": "value"}

# Characters XML 1.0 cannot carry at all, not even escaped: a description pasted with a stray
# control character must not make the whole list unreadable to an XML client.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Open311Error(Exception):
    """An answer in the spec's error format: `code` is both the HTTP status and the body's."""

    def __init__(self, code: int, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.headers = headers or {}


def format_of(fmt: str | None) -> str:
    if fmt in FORMATS:
        return fmt
    raise Open311Error(404, f"format {fmt!r} is not served here: ask for .json or .xml")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(parent: ET.Element, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, Mapping):
            _fill(child, value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            tag = ITEM_TAGS.get(name, "item")
            for item in value:
                element = ET.SubElement(child, tag)
                if isinstance(item, Mapping):
                    _fill(element, item)
                else:
                    element.text = _text(item)
        else:
            child.text = _text(value)


def to_xml(body: Mapping[str, Any] | Sequence[Mapping[str, Any]], root: str,
           item: str | None = None) -> bytes:
    """`body` is a list of items (each becomes an `item` element under `root`) or one mapping
    whose fields become `root`'s children."""
    element = ET.Element(root)
    if isinstance(body, Mapping):
        _fill(element, body)
    else:
        for entry in body:
            _fill(ET.SubElement(element, item or "item"), entry)
    # ElementTree escapes &, < and > in text; the declaration the spec asks for comes first.
    return (XML_DECLARATION + ET.tostring(element, encoding="unicode")).encode()


def render(fmt: str, body: Any, *, root: str, item: str | None = None, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    if fmt == "json":
        content = msgspec.json.encode(body)
    else:
        content = to_xml(body, root, item)
    return Response(content, status, headers, media_type=MEDIA_TYPES[fmt])


def error_response(fmt: str, code: int, description: str,
                   headers: dict[str, str] | None = None) -> Response:
    fmt = fmt if fmt in FORMATS else DEFAULT_FORMAT
    return render(fmt, [{"code": code, "description": description}], root="errors",
                  item="error", status=code, headers=headers)
