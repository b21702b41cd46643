"""What every backend agrees on about the stored layout: its version, checked on open.

1: devices, keys, latest values, dead letters, meta. 2: alerts, area states, audit trail.
3: incidents, their departments, timeline and reports. 4: records (the serve side).
5: Open311 requests filed with a citizen's key are owned by the citizen (record_sql.py).
6: keys may expire (api_keys.expires_at); dead letters are swept by age.
7: grid-cell owners changed by an administrator (cell_owners).
8: field staff added or changed by an administrator (staff).
"""

from __future__ import annotations

# Bumped once here for every backend: the memory store reports it too, so a dump taken from
# any backend names the layout it came from.
SCHEMA_VERSION = 8
