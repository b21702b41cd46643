"""An e-licence as a one-page PDF to print: what the licence says, in Chinese and English, its
verification code, and a QR code of the public verify page's address for that code.

`render_licence_pdf(licence, sheet)` lays the page out (blocking, CPU-bound: a few tens of
milliseconds); `licence_pdf(...)` gathers what the page says from the node (the holder's name
from the citizen registry, the type's names from the catalogue, the issuer's name, the state on
the city's calendar, a code for a licence stored before codes were given) and renders it in a
worker thread. The kiosk prints through the same call.

The QR code is drawn as vector squares from segno's matrix, at QR_ORIGIN with modules of
QR_MODULE points, with its four-module quiet zone left white: a printer's dithering cannot blur
it, and a test can read the drawn modules back from a rendering of the page. Fonts are the
monthly reports' (`cityops.reports.render.cjk_font`): Chinese runs in a CJK font embedded as a
subset where one is installed, the rest in Helvetica; the code in Courier, whose letters are
told apart at a glance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import segno
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from cityops.domain.onestop.licences import Licence, LicenceState
from cityops.domain.onestop.verification import grouped
from cityops.reports.render import cjk_font, font_runs

if TYPE_CHECKING:
    from cityops.serve.onestop import OneStop

LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
MONO = "Courier-Bold"
PAGE_W, PAGE_H = A4
MARGIN = 20 * mm
QR_MODULE = 2.0 * mm / 1.0  # a module's side in points (2 mm: read from arm's length)
QR_QUIET = 4  # modules of white around the symbol, as the QR standard asks
QR_ORIGIN = (PAGE_W - MARGIN - 70 * mm, MARGIN + 22 * mm)  # the symbol's lower left corner
MAX_RENDERS = 4  # PDFs laid out at once in one process; more wait for none, they are refused
_TOKEN = re.compile(r"[\u2e80-\u9fff\uff00-\uffef][\s]*|[^\s\u2e80-\u9fff\uff00-\uffef]+\s*")
STATE_STAMP: dict[LicenceState, tuple[str, str]] = {
    "expired": ("已过期", "EXPIRED"),
    "revoked": ("已撤销", "REVOKED"),
    "not_yet_valid": ("尚未生效", "NOT YET VALID"),
}


class PrintBusy(RuntimeError):
    """Every print slot of this node is in use (HTTP 503 with Retry-After)."""

    retry_after = 1.0
    code = "overloaded"


@dataclass(frozen=True)
class Sheet:
    """What the page says beyond the licence itself."""

    verify_url: str  # the public page that checks this licence's code (the QR code's text)
    holder_name: str
    type_name: str
    type_name_zh: str = ""
    issuer_name: str = ""
    city: str = ""
    state: LicenceState = "valid"
    printed_on: dt.date | None = None
    issued_on: dt.date | None = None  # the city's calendar day it was issued


def verify_url(base: str, code: str) -> str:
    """The verify page's address for a code: `base` is the node's public address."""
    return f"{base.rstrip('/')}/verify?code={quote(grouped(code.replace('-', '')))}"


def qr_matrix(url: str) -> tuple[bytearray, ...]:
    """The modules of the QR code printed for `url` (1 dark), without the quiet zone."""
    return tuple(segno.make(url, error="m", micro=False).matrix)


# -- drawing ---------------------------------------------------------------------------------


def _width(text: str, size: float, cjk: str, latin: str) -> float:
    return sum(stringWidth(t, f, size) for t, f in font_runs(text, cjk, latin))


def _text(c: Canvas, x: float, y: float, text: str, size: float, cjk: str,
          latin: str = LATIN, *, centre: bool = False) -> None:
    if centre:
        x -= _width(text, size, cjk, latin) / 2
    for run, font in font_runs(text, cjk, latin):
        c.setFont(font, size)
        c.drawString(x, y, run)
        x += stringWidth(run, font, size)


def _fit(text: str, size: float, room: float, cjk: str, latin: str = LATIN) -> float:
    """The size at most `size` at which `text` fits in `room` points (long names shrink)."""
    width = _width(text, size, cjk, latin)
    return size if width <= room else max(7.0, size * room / width)


def _qr(c: Canvas, matrix: tuple[bytearray, ...]) -> None:
    x0, y0 = QR_ORIGIN
    n = len(matrix)
    c.setFillColor(colors.black)
    for r, row in enumerate(matrix):
        y = y0 + (n - 1 - r) * QR_MODULE
        col = 0
        while col < n:
            if not row[col]:
                col += 1
                continue
            start = col
            while col < n and row[col]:
                col += 1
            # One rectangle per run of dark modules, a hair wider so that neighbours meet.
            c.rect(x0 + start * QR_MODULE, y, (col - start) * QR_MODULE + 0.01, QR_MODULE + 0.01,
                   stroke=0, fill=1)


def _field(c: Canvas, y: float, zh: str, en: str, value: str, cjk: str) -> float:
    _text(c, MARGIN, y, zh, 11, cjk)
    _text(c, MARGIN, y - 12, en, 8.5, cjk)
    c.setFillColor(colors.black)
    room = PAGE_W - 2 * MARGIN - 45 * mm
    _text(c, MARGIN + 45 * mm, y - 4, value, _fit(value, 14, room, cjk), cjk)
    c.setFillColor(colors.HexColor("#555555"))
    return y - 30


def render_licence_pdf(licence: Licence, sheet: Sheet, *, font: str | None = None) -> bytes:
    """The licence's page as PDF bytes. `font`: a TrueType CJK font file (the node's
    reports font), else one found on the machine (see cityops.reports.render.cjk_font)."""
    if not licence.verify_code:
        raise ValueError(f"licence {licence.id} has no verification code to print")
    cjk = cjk_font(font)
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, pageCompression=1)
    title = sheet.type_name_zh or sheet.type_name
    c.setTitle(f"{title} {licence.number}")
    c.setAuthor(sheet.issuer_name or licence.issuer)
    c.setSubject("e-licence")

    # A frame, the city and the kind of document.
    c.setStrokeColor(colors.HexColor("#8a1c1c"))
    c.setLineWidth(2)
    c.rect(MARGIN / 2, MARGIN / 2, PAGE_W - MARGIN, PAGE_H - MARGIN, stroke=1, fill=0)
    c.setFillColor(colors.HexColor("#8a1c1c"))
    top = PAGE_H - MARGIN - 10 * mm
    if sheet.city:
        _text(c, PAGE_W / 2, top, sheet.city, 12, cjk, centre=True)
    _text(c, PAGE_W / 2, top - 12 * mm, "电子证照", 14, cjk, centre=True)
    _text(c, PAGE_W / 2, top - 18 * mm, "Electronic licence", 10, cjk, centre=True)
    c.setFillColor(colors.black)
    room = PAGE_W - 2 * MARGIN - 10 * mm
    _text(c, PAGE_W / 2, top - 34 * mm, title, _fit(title, 26, room, cjk), cjk, LATIN_BOLD,
          centre=True)
    if sheet.type_name_zh and sheet.type_name:
        _text(c, PAGE_W / 2, top - 42 * mm, sheet.type_name, _fit(sheet.type_name, 14, room, cjk),
              cjk, centre=True)

    # What the licence says.
    c.setFillColor(colors.HexColor("#555555"))
    y = top - 62 * mm
    until = licence.valid_until.isoformat() if licence.valid_until else "长期 (no end date)"
    for zh, en, value in (
        ("持证人", "Holder", sheet.holder_name or "—"),
        ("证照编号", "Licence No.", licence.number),
        ("发证机关", "Issued by", sheet.issuer_name or licence.issuer),
        ("有效期自", "Valid from", licence.valid_from.isoformat()),
        ("有效期至", "Valid until", until),
        ("签发日期", "Issued on", (sheet.issued_on or licence.valid_from).isoformat()),
    ):
        y = _field(c, y, zh, en, value, cjk)

    stamp = STATE_STAMP.get(sheet.state)
    if stamp is not None:
        # Printed anyway (a holder may want the record), but no one may take it for valid.
        c.saveState()
        c.setFillColor(colors.Color(0.75, 0.05, 0.05, alpha=0.85))
        c.translate(PAGE_W / 2, y + 40 * mm)
        c.rotate(18)
        _text(c, 0, 0, f"{stamp[0]} {stamp[1]}", 34, cjk, LATIN_BOLD, centre=True)
        c.restoreState()

    # How to check it: the code, the address, and the QR code of both.
    matrix = qr_matrix(sheet.verify_url)
    _qr(c, matrix)
    side = len(matrix) * QR_MODULE
    qx, qy = QR_ORIGIN
    c.setFillColor(colors.black)
    _text(c, qx + side / 2, qy - 8 * mm, "扫码核验 Scan to verify", 9, cjk, centre=True)
    left = MARGIN
    base = qy + side - 6 * mm
    _text(c, left, base, "核验码 Verification code", 11, cjk)
    code = grouped(licence.verify_code)
    c.setFont(MONO, _fit(code, 17, qx - left - 8 * mm, cjk, MONO))
    c.drawString(left, base - 10 * mm, code)
    _text(c, left, base - 22 * mm, "核验网址 Check it at", 9, cjk)
    url = sheet.verify_url.split("?", 1)[0]
    _text(c, left, base - 28 * mm, url, _fit(url, 10, qx - left - 8 * mm, cjk), cjk)
    c.setFillColor(colors.HexColor("#555555"))
    note = ("输入核验码或扫码, 查看证照是否真实有效。 Enter the code or scan the QR code to see "
            "whether this licence is genuine and valid.")
    _wrapped(c, left, base - 40 * mm, note, 8.5, qx - left - 8 * mm, cjk)
    if sheet.printed_on is not None:
        _text(c, left, MARGIN, f"打印日期 Printed {sheet.printed_on.isoformat()}", 8, cjk)
    c.showPage()
    c.save()
    return buf.getvalue()


def _wrapped(c: Canvas, x: float, y: float, text: str, size: float, room: float,
             cjk: str) -> None:
    """Lines that break between Chinese characters and between Latin words."""
    line = ""
    for token in _TOKEN.findall(text):
        if line and _width(line + token.rstrip(), size, cjk, LATIN) > room:
            _text(c, x, y, line.rstrip(), size, cjk)
            y -= size * 1.4
            line = token.lstrip()
        else:
            line += token
    if line.strip():
        _text(c, x, y, line.rstrip(), size, cjk)


# -- on a node -------------------------------------------------------------------------------

_rendering = 0


async def licence_pdf(side: OneStop, licence: Licence, *, base_url: str, now: float,
                      city: str = "", font: str | None = None) -> bytes:
    """The licence's PDF as printed today, a code given first if it has none. PrintBusy
    when MAX_RENDERS are being laid out already."""
    global _rendering
    if _rendering >= MAX_RENDERS:
        raise PrintBusy(f"{MAX_RENDERS} licences are being printed on this node; try again")
    _rendering += 1
    try:
        lic = await side.book.with_code(licence)
        holder = await side.citizens.get(lic.holder) if lic.holder else None
        t = side.catalogue.licence_type(lic.type)
        today = side.clock.local_date(now)
        sheet = Sheet(verify_url=verify_url(base_url, lic.verify_code),
                      holder_name=holder.name if holder is not None else "",
                      type_name=t.name if t is not None else (lic.name or lic.type),
                      type_name_zh=t.name_zh if t is not None else "",
                      issuer_name=side.department_names.get(lic.issuer, lic.issuer),
                      city=city, state=lic.state_on(today), printed_on=today,
                      issued_on=side.clock.local_date(lic.issued_at) if lic.issued_at else None)
        return await asyncio.to_thread(render_licence_pdf, lic, sheet, font=font)
    finally:
        _rendering -= 1
