"""The renderer alone, on figures made by hand: the CID font ReportLab ships (nothing
embedded) still writes Chinese names a reader can extract; empty sections say so; a font path
that is no font is refused."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest

from cityops.analytics.care import CareCoverage
from cityops.domain.evaluation import evaluate
from cityops.reports.builder import ReportData
from cityops.reports.render import CID_FONT, NO_DATA, SECTIONS, cjk_font, render


def data(**changes) -> ReportData:
    empty = evaluate([], 0.0, 1.0)[0]
    base = dict(area="310115", area_name="浦东新区", level="district", city="Pudong",
                period="2026-11", first=dt.date(2026, 11, 1), after=dt.date(2026, 12, 1),
                timezone="Asia/Shanghai", made_at=0.0, cases=0, reported=0, totals=empty,
                previous=empty, last_year=empty, by_status={}, categories=[], departments=[],
                subareas=[])
    return ReportData(**{**base, **changes})


def text_of(pdf: bytes, tmp_path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed: apt-get install poppler-utils")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def test_the_cid_font_writes_chinese_without_embedding_a_font(tmp_path) -> None:
    care = [CareCoverage("310115001001", "陆家嘴社区", 1200, 900, 0.75)]
    pdf = render(data(care=care), CID_FONT)
    assert b"STSong-Light" in pdf and b"FontFile2" not in pdf  # named, not embedded
    text = text_of(pdf, tmp_path)
    assert "浦东新区" in text and "陆家嘴社区" in text and "75.0 %" in text
    for heading in SECTIONS:
        assert heading in text
    assert "No case was reported in the period." in text
    assert text.count(NO_DATA) == 4  # categories, departments, vital signs, sorting


def test_a_font_path_that_is_not_a_font_is_refused(tmp_path) -> None:
    bogus = tmp_path / "font.ttf"
    bogus.write_bytes(b"not a font")
    with pytest.raises(ValueError, match="report font"):
        cjk_font(bogus)
    with pytest.raises(ValueError, match="not a file"):
        cjk_font(tmp_path / "missing.ttf")
