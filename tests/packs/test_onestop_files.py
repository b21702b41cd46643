"""services.yaml and policies.yaml in a pack folder: optional, the default sets without them,
written and read back when a pack carries its own, errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from cityops.domain.city import Department
from cityops.domain.onestop.policies import Policy
from cityops.packs.categories_file import default_categories
from cityops.packs.format import load_pack, save_pack
from cityops.packs.grid import generate
from cityops.packs.policies_file import policies_of
from cityops.packs.services_file import services_of

DEPARTMENTS = [Department("police", "Police", "110", ["990001"]),
               Department("market_regulation", "Market", None, ["990001"]),
               Department("fire", "Fire", "119", ["990001"]),
               Department("civil_affairs", "Civil affairs", None, ["990001"])]


@pytest.fixture
def pack():
    return msgspec.structs.replace(generate(devices={"noise": 2}), departments=DEPARTMENTS,
                                   categories=default_categories([d.code for d in DEPARTMENTS]))


def test_without_the_files_a_pack_gets_the_defaults_fitted(pack, tmp_path: Path) -> None:
    save_pack(pack, tmp_path)
    assert not (tmp_path / "services.yaml").exists()
    assert not (tmp_path / "policies.yaml").exists()
    loaded = load_pack(tmp_path)
    assert loaded.services is None and loaded.policies is None
    cat = services_of(loaded)
    assert {i.department for i in cat.items} == {"police", "market_regulation", "fire",
                                                 "civil_affairs"}
    assert [p.id for p in policies_of(loaded)] == ["elderly_care_subsidy_80_alone",
                                                   "senior_allowance_90"]


def test_a_pack_of_its_own_round_trips(pack, tmp_path: Path) -> None:
    own = msgspec.structs.replace(
        pack, services=services_of(pack),
        policies=[Policy(id="over_100", name="Centenarians", department="civil_affairs",
                         when="age >= 100")])
    save_pack(own, tmp_path)
    loaded = load_pack(tmp_path)
    assert (loaded.services, loaded.policies) == (own.services, own.policies)


@pytest.mark.parametrize(("name", "text", "error"), [
    ("services.yaml", "items:\n  - {code: x, name: X, department: navy}\n",
     "services.yaml: item 'x': field 'department': unknown department 'navy'"),
    ("services.yaml", "items: 3\n", "services.yaml: section 'items' must be a list"),
    ("services.yaml", "item: []\n", "services.yaml: unknown section 'item'"),
    ("policies.yaml", "- {id: p, name: P, department: navy, when: age > 1}\n",
     "policies.yaml: policy 'p': field 'department': unknown department 'navy'"),
    ("policies.yaml", "- {id: p, name: P, department: police, when: \"has_licence('x')\"}\n",
     "policies.yaml: policy 'p': field 'when': 'x' is not a licence type"),
])
def test_errors_name_file_and_field(pack, tmp_path: Path, name, text, error) -> None:
    save_pack(pack, tmp_path)
    if name == "policies.yaml":  # licence types are checked against the pack's own catalogue
        (tmp_path / "services.yaml").write_text("licences: []\n")
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError) as caught:
        load_pack(tmp_path)
    assert str(caught.value).startswith(error), str(caught.value)
