"""City packs: a city as a folder of data files, their generators and importers."""

from cityops.packs.errors import PackError
from cityops.packs.format import check_pack, load_pack, save_pack

__all__ = ["PackError", "check_pack", "load_pack", "save_pack"]
