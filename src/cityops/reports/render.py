"""A report's PDF, laid out with ReportLab: numbered sections with tables, and charts drawn
with reportlab.graphics (a bar chart of the top categories, closure and on-time rates per
department, a line per vital sign).

Blocking and CPU-bound: the service runs it in a worker thread.

Fonts: Latin text is set in Helvetica, and each run of CJK characters (Chinese area and
category names) in a CJK font: a TrueType font when one is found (`cjk_font`, or a few usual
system paths: WenQuanYi, Droid Sans Fallback, Noto Sans CJK as .ttf), embedded as a subset so
the PDF shows its names on any machine; else the 'STSong-Light' CID font whose metrics
ReportLab ships, which embeds nothing (the reader supplies the glyphs: every Chinese PDF
reader has them, a bare Linux box without a CJK font shows boxes, though the text is there
and copies out). Nothing is ever fetched.

The section headings are fixed (SECTIONS) so a reader, and the test, can find each part; a
section with nothing to show says so rather than disappearing.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont, TTFError
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cityops.domain.evaluation import Figures
from cityops.reports.builder import ReportData

LATIN = "Helvetica"
CID_FONT = "STSong-Light"
EMBEDDED = "CityOpsCJK"
CJK_FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
# CJK radicals to the end of the CJK blocks, and the full-width forms.
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+")
SECTIONS = (
    "1. Summary",
    "2. Incidents and closure rates",
    "3. Top categories",
    "4. On-time rates by department",
    "5. Vital signs",
    "6. Garbage-sorting ranking",
    "7. Elderly-care coverage",
)
NO_DATA = "No data for this area and period."
MAX_ROWS = 60  # rows of one table; a longer list is cut, and says so
LONG_LIST = 40  # communities listed in full; of more, the best and the worst 20
PALETTE = (colors.HexColor("#1f77b4"), colors.HexColor("#ff7f0e"), colors.HexColor("#2ca02c"),
           colors.HexColor("#d62728"), colors.HexColor("#9467bd"), colors.HexColor("#8c564b"))

_font_lock = threading.Lock()
_chosen: dict[str | None, str] = {}


def cjk_font(path: Path | str | None = None) -> str:
    """The name of the CJK font to set Chinese in (registered once): the TrueType font at
    `path` or the first of CJK_FONT_PATHS found, else the CID font (also when `path` is
    CID_FONT's name). A given `path` that cannot be read as a TrueType font is an error, not a
    silent fallback."""
    key = None if path is None else str(path)
    with _font_lock:  # two renders in two threads at once register it once
        if key in _chosen:
            return _chosen[key]
        name = CID_FONT
        candidates = [] if key == CID_FONT else [key] if key is not None else CJK_FONT_PATHS
        for candidate in candidates:
            if not Path(candidate).is_file():
                if key is not None:
                    raise ValueError(f"report font {key} is not a file")
                continue
            try:
                name = f"{EMBEDDED}-{len(_chosen)}"
                pdfmetrics.registerFont(TTFont(name, candidate, subfontIndex=0))
                break
            except (TTFError, OSError) as error:  # a CFF-outlined OpenType font, say
                if key is not None:
                    raise ValueError(f"report font {key}: {error}") from None
                name = CID_FONT
        if name == CID_FONT and CID_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
        _chosen[key] = name
        return name


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def font_runs(text: str, cjk: str, latin: str = LATIN) -> list[tuple[str, str]]:
    """`text` cut into runs, each with the font it is drawn in: CJK runs in `cjk`, the rest in
    `latin` (the Latin fonts have no CJK glyphs, the CID font's Latin is poor)."""
    out, at = [], 0
    for m in _CJK.finditer(text):
        if m.start() > at:
            out.append((text[at:m.start()], latin))
        out.append((m.group(), cjk))
        at = m.end()
    if at < len(text):
        out.append((text[at:], latin))
    return out


def cjk_markup(text: str, cjk: str) -> str:
    """`text` as Paragraph markup: escaped, each CJK run in the CJK font."""
    return "".join(escape(run) if font == LATIN else f'<font name="{cjk}">{escape(run)}</font>'
                   for run, font in font_runs(text, cjk))


def _styles() -> dict[str, ParagraphStyle]:
    f = LATIN
    return {
        "title": ParagraphStyle("title", fontName=f, fontSize=18, leading=24, spaceAfter=4),
        "sub": ParagraphStyle("sub", fontName=f, fontSize=10, leading=14,
                              textColor=colors.HexColor("#555555")),
        "h": ParagraphStyle("h", fontName=f, fontSize=13, leading=18, spaceBefore=10,
                            spaceAfter=4, keepWithNext=True),
        "p": ParagraphStyle("p", fontName=f, fontSize=9, leading=12),
        "cell": ParagraphStyle("cell", fontName=f, fontSize=8, leading=10),
        "num": ParagraphStyle("num", fontName=f, fontSize=8, leading=10, alignment=2),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def _num(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _label(text: str, n: int = 18) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


class _Kit:
    """What the parts of one render share: the styles and the CJK font's name."""

    def __init__(self, cjk: str) -> None:
        self.cjk = cjk
        self.s = _styles()

    def para(self, text: str, style: str = "p") -> Paragraph:
        return Paragraph(cjk_markup(text, self.cjk), self.s[style])

    def font_for(self, labels: list[str]) -> str:
        """One font for a chart's labels: the CJK one (which has Latin too) if any needs it."""
        return self.cjk if any(has_cjk(t) for t in labels) else LATIN

    def table(self, rows: list[list[str]], widths: list[float] | None = None) -> Table:
        cut = len(rows) - 1 > MAX_ROWS
        if cut:
            rows = rows[:MAX_ROWS + 1] + [[f"... {len(rows) - 1 - MAX_ROWS} more rows"]
                                          + [""] * (len(rows[0]) - 1)]
        # Cells as paragraphs, so a CJK name inside Latin text gets its own font; the first
        # column is a name, the others numbers (right-aligned).
        cells = [[self.para(v, "cell" if j == 0 or i == 0 else "num") for j, v in enumerate(r)]
                 for i, r in enumerate(rows)]
        if widths is None:
            n = len(rows[0])
            widths = [min(62 * mm, 174 * mm - 22 * mm * (n - 1))] + [22 * mm] * (n - 1)
        t = Table(cells, colWidths=widths, repeatRows=1, hAlign="LEFT")
        t.setStyle(TableStyle([
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef6")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b8c4")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ]))
        return t

    def category_chart(self, items: list[tuple[str, int]]) -> Drawing:
        height = 30 + 16 * len(items)
        d = Drawing(170 * mm, height)
        chart = HorizontalBarChart()
        chart.x, chart.y = 60 * mm, 10
        chart.width, chart.height = 100 * mm, height - 20
        # Largest on top: the chart draws its first bar at the bottom.
        chart.data = [[n for _, n in reversed(items)]]
        names = [_label(name, 24) for name, _ in reversed(items)]
        chart.categoryAxis.categoryNames = names
        chart.categoryAxis.labels.fontName = self.font_for(names)
        chart.categoryAxis.labels.fontSize = 7
        chart.valueAxis.labels.fontName = LATIN
        chart.valueAxis.labels.fontSize = 7
        chart.valueAxis.valueMin = 0
        chart.bars[0].fillColor = PALETTE[0]
        d.add(chart)
        return d

    def department_chart(self, rows: list[Figures]) -> Drawing:
        # Horizontal bars: a city has twenty departments with long names, which a vertical
        # chart's axis cannot label.
        height = 40 + 20 * len(rows)
        d = Drawing(170 * mm, height)
        chart = HorizontalBarChart()
        chart.x, chart.y = 62 * mm, 10
        chart.width, chart.height = 100 * mm, height - 30
        ordered = list(reversed(rows))  # the first department on top
        chart.data = [[(r.on_time_closure_rate or 0) * 100 for r in ordered],
                      [(r.closure_rate or 0) * 100 for r in ordered]]
        names = [_label(str(r.group), 40) for r in ordered]
        chart.categoryAxis.categoryNames = names
        chart.categoryAxis.labels.fontName = self.font_for(names)
        chart.categoryAxis.labels.fontSize = 6.5
        chart.valueAxis.labels.fontName = LATIN
        chart.valueAxis.labels.fontSize = 7
        chart.valueAxis.valueMin, chart.valueAxis.valueMax = 0, 100
        chart.bars[0].fillColor, chart.bars[1].fillColor = PALETTE[1], PALETTE[0]
        d.add(chart)
        legend = Legend()
        legend.x, legend.y = 62 * mm, height - 6
        legend.fontName, legend.fontSize = LATIN, 7
        legend.alignment = "right"
        legend.columnMaximum = 1
        legend.colorNamePairs = [(PALETTE[0], "closure %"), (PALETTE[1], "on-time closure %")]
        d.add(legend)
        return d

    def vital_chart(self, data: ReportData) -> Drawing:
        d = Drawing(170 * mm, 75 * mm)
        plot = LinePlot()
        plot.x, plot.y = 15 * mm, 10 * mm
        plot.width, plot.height = 145 * mm, 50 * mm
        lines = []
        for line in data.vital:
            points = [(k + 1, v) for k, v in enumerate(line.daily) if v is not None]
            lines.append(points or [(1, 0.0)])
        plot.data = lines
        for i in range(len(lines)):
            plot.lines[i].strokeColor = PALETTE[i % len(PALETTE)]
            plot.lines[i].strokeWidth = 1.2
        plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 1, max(len(data.days), 2)
        plot.xValueAxis.labels.fontName = plot.yValueAxis.labels.fontName = LATIN
        plot.xValueAxis.labels.fontSize = plot.yValueAxis.labels.fontSize = 7
        plot.yValueAxis.valueMin = 0
        d.add(plot)
        legend = Legend()
        legend.x, legend.y = 15 * mm, 72 * mm
        titles = [_label(v.title, 36) for v in data.vital]
        legend.fontName, legend.fontSize = self.font_for(titles), 7
        legend.columnMaximum = 2
        legend.colorNamePairs = [(PALETTE[i % len(PALETTE)], t) for i, t in enumerate(titles)]
        d.add(legend)
        return d


def _ends(items: list, n: int) -> list:
    """All of a list up to `n`, else its first and last n/2 (the best and the worst)."""
    return items if len(items) <= n else items[:n // 2] + items[-(n // 2):]


def _list_note(total: int, shown: int, left_out: int, order: str, why: str) -> str:
    head = (f"{total} communities, {order}" if shown == total else
            f"The first and last {shown // 2} of {total} communities, {order}")
    return head + (f"; {left_out} more {why}." if left_out else ".")


def _summary(data: ReportData) -> list[list[str]]:
    def row(name: str, attr: str, rate: bool) -> list[str]:
        fmt = _pct if rate else _num
        return [name] + [fmt(getattr(f, attr)) for f in
                         (data.totals, data.previous, data.last_year)]

    return [["", "this period", "period before", "a year before"],
            row("cases due to close", "due", False),
            row("closed", "closed", False),
            row("closure rate", "closure_rate", True),
            row("on-time closure rate", "on_time_closure_rate", True),
            row("registered", "registered", False),
            row("rework rate", "rework_rate", True),
            row("dispatch accuracy", "dispatch_accuracy", True)]


def _rates(rows: list[Figures], first: str) -> list[list[str]]:
    return [[first, "due", "closed", "on time", "closure", "on-time"]] + [
        [str(r.group), _num(r.due), _num(r.closed), _num(r.closed_on_time),
         _pct(r.closure_rate), _pct(r.on_time_closure_rate)] for r in rows]


def render(data: ReportData, font: Path | str | None = None) -> bytes:
    """The PDF of one report; `font`: a TrueType CJK font to embed (see cjk_font)."""
    k = _Kit(cjk_font(font))
    out = io.BytesIO()
    last = data.after - dt.timedelta(days=1)
    title = f"{data.city} - {data.area_name}" if data.area_name else data.city
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=16 * mm, bottomMargin=16 * mm,
                            title=f"CityOps report {data.area} {data.period}",
                            author="CityOps")
    made = dt.datetime.fromtimestamp(data.made_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    story: list = [
        k.para(title, "title"),
        k.para(f"Operations report, {data.period} ({data.first.isoformat()} to "
               f"{last.isoformat()}, {data.timezone}); area {data.area} ({data.level}); "
               f"made {made}", "sub"),
        Spacer(1, 4 * mm),
    ]

    def section(i: int) -> None:
        story.append(k.para(SECTIONS[i], "h"))

    def say(text: str) -> None:
        story.append(k.para(text))

    section(0)
    say(f"{data.cases} cases counted, {data.reported} of them reported in the period.")
    story.append(k.table(_summary(data), [55 * mm, 35 * mm, 35 * mm, 35 * mm]))

    section(1)
    if data.by_status:
        say("Cases reported in the period, by status now:")
        story.append(k.table([["status", "cases"]]
                             + [[s, str(n)] for s, n in data.by_status.items()]))
    else:
        say("No case was reported in the period.")
    if data.subareas:
        story.append(Spacer(1, 3 * mm))
        say("Closure and on-time closure per area one level down:")
        story.append(k.table(_rates(data.subareas, "area")))

    section(2)
    if data.categories:
        story.append(k.category_chart(data.categories))
        story.append(k.table([["category", "cases"]]
                             + [[n, str(c)] for n, c in data.categories]))
    else:
        say(NO_DATA)

    section(3)
    busy = [r for r in data.departments if r.due or r.dispatched]
    if busy:
        story.append(k.department_chart(busy))
        story.append(k.table(_rates(data.departments, "department")))
    else:
        say(NO_DATA)

    section(4)
    if any(v.readings for v in data.vital):
        story.append(k.vital_chart(data))
        story.append(k.table([["vital sign", "readings", "total / mean"]] + [
            [v.title, str(v.readings),
             _num(v.total / v.readings if v.mean and v.readings else v.total, 1)]
            for v in data.vital]))
    else:
        say(NO_DATA)

    section(5)
    inspected = sorted((c for c in data.sorting if c.accuracy is not None),
                       key=lambda c: (-(c.accuracy or 0.0), c.name))
    if inspected:
        shown = _ends(inspected, LONG_LIST)
        say(_list_note(len(inspected), len(shown), len(data.sorting) - len(inspected),
                       "best accuracy first", "with no inspection in the period"))
        story.append(k.table([["community", "rank in town", "inspections", "accuracy",
                               "trend", "below target"]] + [
            [c.name, str(c.rank) if c.rank else "-", str(c.inspections), _pct(c.accuracy),
             "-" if c.trend is None else f"{c.trend * 100:+.1f} pts",
             "yes" if c.below_target else ""] for c in shown]))
    else:
        say(NO_DATA)

    section(6)
    known = sorted((c for c in data.care if c.share is not None),
                   key=lambda c: (c.share or 0.0, c.name))
    if known:
        shown = _ends(known, LONG_LIST)
        say(_list_note(len(known), len(shown), len(data.care) - len(known),
                       "least covered first", "with no resident of 60 or over"))
        story.append(k.table([["community", "residents 60+", "covered", "share"]] + [
            [c.name, _num(c.residents_60), _num(c.covered_60), _pct(c.share)]
            for c in shown]))
    else:
        say(NO_DATA)
    doc.build(story)
    return out.getvalue()
