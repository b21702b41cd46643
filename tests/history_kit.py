"""A small real city for history imports: the nine Dublin City Council noise monitors whose
hourly LAeq readings 2015-2021 are in ../shared/data (see its README), as `noise` devices of a
grid city placed over Dublin, in the Europe/Dublin time zone."""

from __future__ import annotations

import csv
from pathlib import Path

import msgspec

from cityops.packs.format import save_pack
from cityops.packs.grid import generate as grid_city

DUBLIN_FILE = "dublin_noise_hourly_laeq_2015-2021.tsv"
MONITORS = ("BullIsland2", "Ballyferm3", "Ballymun4", "DCCRowingClub5", "NavanRoad8", "Raheny9",
            "ChanceryPark11", "BlessingtonBasin12", "DolphinsBarn13")


def device_id(monitor: str) -> str:
    return f"dublin-noise-{monitor}"


def dublin_map_args() -> list[str]:
    """`--map` options naming the file's columns: its time and one column per monitor."""
    args = ["--map", "datetime=ts"]
    for monitor in MONITORS:
        args += ["--map", f"laeq_{monitor}={device_id(monitor)}"]
    return args


def dublin_mapping() -> dict[str, str]:
    return {"datetime": "ts", **{f"laeq_{m}": device_id(m) for m in MONITORS}}


def dublin_city():
    city = grid_city(devices={"noise": len(MONITORS)}, center=(53.35, -6.27), size_deg=0.2)
    devices = [msgspec.structs.replace(d, id=device_id(m), name=f"Dublin noise monitor {m}",
                                       meta={**d.meta, "setting": "residential"})
               for d, m in zip(city.devices, MONITORS)]
    info = msgspec.structs.replace(city.info, timezone="Europe/Dublin")
    return msgspec.structs.replace(city, devices=devices, info=info)


def save_dublin_city(folder: Path) -> Path:
    save_pack(dublin_city(), folder)
    return folder


def read_dublin(path: Path) -> list[dict[str, str]]:
    """The file as the csv module reads it: the reference the import is checked against."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))
