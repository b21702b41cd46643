"""The SELECT behind `Store.list_alerts`, for both SQL stores: one filter logic, two dialects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A whole area code names its level's column (each has an index); codes nest by prefix.
AREA_COLUMN_BY_LENGTH = {6: "district", 9: "town", 12: "village"}


@dataclass(frozen=True)
class Dialect:
    mark: str  # parameter placeholder: "?" or "%s"
    starts_with: Callable[[str], tuple[str, list[Any]]]  # village prefix test for a part code
    flag: Callable[[bool], Any]  # how a boolean parameter is passed


def alerts_query(
    dialect: Dialect,
    table: str,
    doc: str,
    scenario: str | None,
    area: str | None,
    active: bool | None,
    limit: int,
    before: tuple[float, str] | None,
) -> tuple[str, list[Any]]:
    """The SELECT of `list_alerts` over `table`, reading column expression `doc`."""
    m = dialect.mark
    where: list[str] = []
    params: list[Any] = []
    if scenario is not None:
        where.append(f"scenario = {m}")
        params.append(scenario)
    if area is not None:
        column = AREA_COLUMN_BY_LENGTH.get(len(area))
        if column is not None:
            where.append(f"{column} = {m}")
            params.append(area)
        else:  # not a whole code: no index, but the same prefix rule
            clause, values = dialect.starts_with(area)
            where.append(clause)
            params += values
    if active is not None:
        where.append(f"active = {m}")
        params.append(dialect.flag(active))
    if before is not None:
        where.append(f"(first_seen, id) < ({m}, {m})")
        params += [before[0], before[1]]
    sql = (
        f"SELECT {doc} FROM {table} {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY first_seen DESC, id DESC LIMIT {m}"
    )
    return sql, [*params, max(0, limit)]
