"""`cityops map build` from the command line: the archive in the node's data folder from a
pack and an OSM extract, and a missing or broken extract or pack said in one line, exit 2, no
traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from cityops.cli.main import app
from cityops.maps.archive import TileArchive, archive_path
from cityops.packs.format import save_pack
from tests.maps.map_kit import HELSINKI, helsinki_pack

runner = CliRunner()


def _pack(tmp_path):
    folder = tmp_path / "pack"
    save_pack(helsinki_pack(), folder)
    return folder


def test_build_from_the_pack_and_an_extract_into_the_data_folder(tmp_path):
    pack, data = _pack(tmp_path), tmp_path / "data"
    result = runner.invoke(app, ["map", "build", "--city", str(pack), "--data", str(data),
                                 "--osm", str(HELSINKI), "--maxzoom", "13"])
    assert result.exit_code == 0, result.output
    assert "Base map:" in result.output and "roads" in result.output
    archive = TileArchive(archive_path(data))
    try:
        assert archive.header["max_zoom"] == 13
        assert archive.metadata()["attribution"] == "© OpenStreetMap contributors"
    finally:
        archive.close()


def _fails(result, *words):
    assert result.exit_code == 2, result.output
    # Exit 2 from `fail`, not an exception's traceback.
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    said = " ".join(result.output.split())
    for word in words:
        assert word in said


def test_a_missing_extract(tmp_path):
    result = runner.invoke(app, ["map", "build", "--city", str(_pack(tmp_path)),
                                 "--out", str(tmp_path / "m.pmtiles"),
                                 "--osm", str(tmp_path / "nowhere.osm.pbf")])
    _fails(result, "nowhere.osm.pbf", "no such file")
    assert not (tmp_path / "m.pmtiles").exists()


def test_a_file_that_is_not_an_extract(tmp_path):
    bad = tmp_path / "notes.osm.pbf"
    bad.write_text("these are not the streets you are looking for\n")
    result = runner.invoke(app, ["map", "build", "--city", str(_pack(tmp_path)),
                                 "--out", str(tmp_path / "m.pmtiles"), "--osm", str(bad)])
    _fails(result, "notes.osm.pbf", "not a readable OSM PBF extract")
    assert not (tmp_path / "m.pmtiles").exists()
    assert not (tmp_path / "m.pmtiles.partial").exists()


def test_a_missing_pack_and_no_target(tmp_path):
    _fails(runner.invoke(app, ["map", "build", "--city", str(tmp_path / "none"),
                               "--data", str(tmp_path)]), "--city")
    _fails(runner.invoke(app, ["map", "build", "--city", str(tmp_path)]), "--data")
    _fails(runner.invoke(app, ["map", "build", "--city", str(tmp_path), "--data",
                               str(tmp_path), "--minzoom", "12", "--maxzoom", "10"]),
           "--minzoom")


def test_the_demo_builds_its_map_on_the_first_run_only(tmp_path):
    import io

    from rich.console import Console

    from cityops.cli.map import ensure_map

    pack, data = _pack(tmp_path), tmp_path / "data"
    said = io.StringIO()
    ensure_map(pack, data, Console(file=said, width=200))
    built = archive_path(data).stat().st_mtime_ns
    assert "Building the base map once" in said.getvalue()
    ensure_map(pack, data, Console(file=said, width=200))
    assert archive_path(data).stat().st_mtime_ns == built
    archive = TileArchive(archive_path(data))
    try:
        assert archive.metadata()["attribution"] == ""  # the pack alone: nobody to credit
    finally:
        archive.close()
