"""The roles a cluster node may run, the consumer groups they read in, and what a node
answers when asked for a part it does not run."""

from __future__ import annotations

import logging



log = logging.getLogger(__name__)


ROLES = ("ingest", "detect", "act", "web", "history")
# Consumer groups of the components that must each see every message once, deployment-wide.
DETECT_GROUP = "detect"
HISTORY_GROUP = "history"
ACT_GROUP = "act"


def parse_roles(values: list[str]) -> list[str]:
    """`--role ingest --role detect` or `--role ingest,detect`; `all` stands for every role."""
    roles: list[str] = []
    for value in values:
        for role in value.split(","):
            role = role.strip().lower()
            if not role:
                continue
            if role != "all" and role not in ROLES:
                raise ValueError(f"unknown role {role!r}: use {', '.join(ROLES)} or all")
            if role not in roles:
                roles.append(role)
    if not roles:
        return ["all"]
    return ["all"] if "all" in roles else roles


def not_here(what: str, where: str):
    from cityops.api.errors import ApiError

    return ApiError(503, f"this node does not {what}; {where}",
                    headers={"Retry-After": "30"})
