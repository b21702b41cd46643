"""The receipt a kiosk prints for a submission: what was applied for, to which departments, the
reference to quote, each application's legal deadline, and how every material was satisfied
(attached from the e-licence store with the licence's number, got from the registry by data
sharing, or handed in), so the citizen leaves with paper that says nothing more was needed.

Bilingual (Chinese first), A5, one page for any ordinary submission. The applicant's ID and
phone are printed masked: a receipt left on the kiosk's tray shows no one's full number. Drawn
with ReportLab's platypus in a worker thread; Chinese runs are set in the reports' CJK font
(`cityops.reports.render.cjk_font`, registered once per process)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cityops.domain.citizens import Citizen, mask_id_number, mask_phone
from cityops.domain.onestop.applications import Application, Submission
from cityops.domain.onestop.catalogue import Catalogue
from cityops.reports.render import cjk_font, cjk_markup

LATIN = "Helvetica"
HOW = {
    "attached": ("已从电子证照库调取", "attached from the e-licence store"),
    "shared": ("已通过数据共享获取", "got by data sharing"),
    "provided": ("已提交", "handed in"),
    "pending": ("待本次办件出证后自动附上", "attached once issued by this submission"),
    "asked": ("待补交", "to hand in"),
}


def render_receipt(sub: Submission, apps: Sequence[Application], citizen: Citizen | None,
                   cat: Catalogue, *, city: str, tz: Any, printed_at: float,
                   department_names: dict[str, str]) -> bytes:
    cjk = cjk_font()

    def when(t: float | None) -> str:
        return "" if t is None else dt.datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M")

    def p(text: str, style: ParagraphStyle) -> Paragraph:
        return Paragraph(cjk_markup(text, cjk), style)

    title = ParagraphStyle("t", fontName=LATIN, fontSize=14, leading=19, spaceAfter=2)
    sub_style = ParagraphStyle("s", fontName=LATIN, fontSize=8.5, leading=11,
                               textColor=colors.HexColor("#444444"))
    head = ParagraphStyle("h", fontName=LATIN, fontSize=10.5, leading=14, spaceBefore=6,
                          spaceAfter=3)
    cell = ParagraphStyle("c", fontName=LATIN, fontSize=8, leading=10)
    item_names = {i.code: i for i in cat.items}
    bundle = cat.bundle(sub.bundle) if sub.bundle else None
    title_zh = bundle.name_zh if bundle else (item_names[sub.items[0]].name_zh
                                              if sub.items and sub.items[0] in item_names
                                              else "")
    story: list[Any] = [
        p(f"{city} · 自助服务回执 Self-service receipt", title),
        p(f"{title_zh} {sub.title}".strip(), head),
        p(f"受理编号 Reference: {sub.id}", sub_style),
        p(f"提交时间 Submitted: {when(sub.submitted_at)} · 渠道 Channel: {sub.channel}",
          sub_style),
        p(f"打印时间 Printed: {when(printed_at)}", sub_style),
    ]
    if citizen is not None:
        story.append(p(f"申请人 Applicant: {citizen.name} · 证件 ID "
                       f"{mask_id_number(citizen.id_number)} · 电话 Phone "
                       f"{mask_phone(citizen.phone)}", sub_style))
    story.append(p("办件 Applications", head))
    rows = [[p("事项 Item", cell), p("部门 Department", cell), p("状态 Status", cell),
             p("办结时限 Due", cell)]]
    for a in apps:
        item = item_names.get(a.item)
        name = f"{item.name_zh} {a.item_name}" if item and item.name_zh else a.item_name
        rows.append([p(f"{name} · {a.id}", cell),
                     p(department_names.get(a.department, a.department), cell),
                     p(a.status.value, cell), p(when(a.due) or "-", cell)])
    story.append(_table(rows, (50 * mm, 32 * mm, 20 * mm, 26 * mm)))
    story.append(p("材料 Materials", head))
    mats = [[p("材料 Material", cell), p("如何取得 How it was had", cell)]]
    for m in sub.materials:
        zh, en = HOW.get(m.status, (m.status, m.status))
        note = f"{zh} {en}"
        if m.status == "attached" and m.licence_number:
            note += f" · No. {m.licence_number}"
            if m.valid_until:
                note += f" · 有效期至 valid until {m.valid_until}"
        name_zh = next((mt.name_zh for i in item_names.values() for mt in i.materials
                        if mt.code == m.code and mt.name_zh), "")
        mats.append([p(f"{name_zh} {m.name}".strip(), cell), p(note, cell)])
    if len(mats) == 1:
        mats.append([p("无需材料 None needed", cell), p("", cell)])
    story.append(_table(mats, (52 * mm, 76 * mm)))
    story += [Spacer(1, 4 * mm),
              p("政府已持有的电子证照和数据不再要求您提交。凭受理编号可在市民门户或窗口查询进度。"
                " What the government already holds was not asked for again. Quote the "
                "reference on the portal or at a window to follow the application.", sub_style)]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A5, leftMargin=10 * mm, rightMargin=10 * mm,
                            topMargin=10 * mm, bottomMargin=10 * mm,
                            title=f"Receipt {sub.id}", author=city)
    doc.build(story)
    return out.getvalue()


def _table(rows: list[list[Any]], widths: tuple[float, ...]) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=1)
    t.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa7b5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return t
