"""`cityops serve --report-font`: a file that is no TrueType font is refused in one line at
start, not found out at each report."""

from __future__ import annotations

from typer.testing import CliRunner

from cityops.cli.main import app
from cityops.packs.format import save_pack


def test_serve_refuses_a_report_font_that_is_no_font(tmp_path, grid_pack) -> None:
    save_pack(grid_pack, tmp_path / "city")
    font = tmp_path / "font.ttf"
    font.write_bytes(b"not a font")
    r = CliRunner().invoke(app, ["serve", "--city", str(tmp_path / "city"), "--data",
                                 str(tmp_path / "d"), "--report-font", str(font)])
    assert r.exit_code == 2 and "--report-font" in r.output and "font.ttf" in r.output
    assert "Traceback" not in r.output
