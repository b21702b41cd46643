"""policies.yaml: eligibility policies, "enjoy without applying" (see
`cityops.domain.onestop.policies`). A list of policies, each with its condition in `when`.

A pack without the file gets the default set (`packs/policies.yaml`), less the policies of
departments the city lacks or naming licence types its catalogue does not have.
"""

from __future__ import annotations

import functools

from cityops.domain.city import CityPack
from cityops.domain.onestop.policies import Policy, PolicyError, check_policies
from cityops.packs.items_file import bundled, items_from_yaml, items_to_yaml
from cityops.packs.services_file import services_of

NAME = "policies.yaml"

def policies_from_yaml(data: bytes, name: str = NAME) -> list[Policy]:
    return items_from_yaml(data, name, Policy, noun="policy", label="id",
                           check=check_policies, errors=PolicyError)

def policies_to_yaml(policies: list[Policy]) -> bytes:
    return items_to_yaml(policies)

@functools.cache
def _defaults() -> tuple[Policy, ...]:
    return tuple(policies_from_yaml(*bundled(NAME)))

def default_policies(departments: list[str], licence_types: set[str]) -> list[Policy]:
    have = set(departments)
    return [p for p in _defaults()
            if p.department in have and p.condition.licence_types() <= licence_types]

def default_for(pack: CityPack) -> list[Policy]:
    types = {t.code for t in services_of(pack).licences}
    return default_policies([d.code for d in pack.departments], types)

def policies_of(pack: CityPack) -> list[Policy]:
    """The pack's policies, or the default ones for a pack made in code without them."""
    return pack.policies if pack.policies is not None else default_for(pack)
