"""`cityops history import`: user mistakes are one readable line, never a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from cityops.cli.main import app
from cityops.packs.format import save_pack
from cityops.packs.grid import generate as grid_city

runner = CliRunner()


def _run(tmp_path, *args):
    city = tmp_path / "city"
    if not city.exists():
        save_pack(grid_city(devices={"noise": 2}), city)
    return runner.invoke(app, ["history", "import", *args, "--city", str(city),
                               "--data", str(tmp_path / "data")])


def test_mistakes_are_said_plainly(tmp_path):
    good = tmp_path / "a.csv"
    good.write_text("when,device,value\n1,x,2\n")
    cases = [
        ((str(tmp_path / "missing.csv"),), "no such file"),
        ((str(good), "--map", "when"), "is not OLD=NEW"),
        ((str(good),), "no `ts` column"),
        ((str(good), "--map", "when=ts", "--tz", "Mars/Olympus"), "is not a time zone"),
        ((str(good), "--format", "xlsx"), "--format 'xlsx' is not one of"),
        ((str(good), "--map", "nope=ts"), "--map names 'nope'"),
    ]
    for args, message in cases:
        result = _run(tmp_path, *args)
        assert result.exit_code != 0, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_good_file_gets_a_summary(tmp_path):
    city = grid_city(devices={"noise": 2})
    save_pack(city, tmp_path / "city")
    device = city.devices[0].id
    source = tmp_path / "b.csv"
    source.write_text(f"device_id,ts,value\n{device},2016-02-01T03:00:00Z,44.5\n"
                      f"{device},2016-02-01T03:01:00Z,\n")
    result = _run(tmp_path, str(source))
    assert result.exit_code == 0, result.output
    for label in ("rows read", "readings stored", "rejected", "from", "to", "took"):
        assert label in result.output
    assert "2016-02-01 03:00 UTC" in result.output
    assert (tmp_path / "b.csv.rejects.csv").read_text().splitlines()[1].startswith("3,value,")
