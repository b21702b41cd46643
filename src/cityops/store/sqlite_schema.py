"""The SQLite store's whole schema, in one place: every table and index of every aggregate,
run statement by statement (`executescript` would commit the open transaction first) when a
store opens. `tests/store/test_schema_parity.py` holds it to postgres_schema.py's.
"""

from __future__ import annotations

from cityops.store import incident_sql as q

SCHEMA: list[str] = [
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS devices (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        village TEXT,
        doc TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS devices_kind ON devices (kind)""",
    """CREATE INDEX IF NOT EXISTS devices_village ON devices (village)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        scope TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked INTEGER NOT NULL,
        expires_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS latest (
        device_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        value REAL,  -- SQLite stores NaN as NULL, so NULL reads back as NaN
        PRIMARY KEY (device_id, channel)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        place TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload TEXT NOT NULL,
        received_at REAL NOT NULL,
        item INTEGER
    )""",
    """CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at)""",
    # Alerts are kept whole as JSON: the columns beside `doc` exist to be filtered and sorted on.
    # Each filter has an index that ends in (first_seen, id), so a page newest first is read off
    # the index in order instead of being sorted.
    """CREATE TABLE IF NOT EXISTS alerts (
        id TEXT PRIMARY KEY,
        scenario TEXT NOT NULL,
        district TEXT,
        town TEXT,
        village TEXT,
        active INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        doc TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS alerts_recent ON alerts (first_seen, id)""",
    """CREATE INDEX IF NOT EXISTS alerts_scenario ON alerts (scenario, first_seen, id)""",
    """CREATE INDEX IF NOT EXISTS alerts_district ON alerts (district, first_seen, id)""",
    """CREATE INDEX IF NOT EXISTS alerts_town ON alerts (town, first_seen, id)""",
    """CREATE INDEX IF NOT EXISTS alerts_village ON alerts (village, first_seen, id)""",
    """CREATE INDEX IF NOT EXISTS alerts_active ON alerts (active, first_seen, id)""",
    """CREATE TABLE IF NOT EXISTS area_states (
        code TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        changed_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cell_owners (
        cell TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        changed_at REAL NOT NULL
    ) WITHOUT ROWID""",
    # The roster's changes over the city pack's staff: seq keeps the order people were added.
    """CREATE TABLE IF NOT EXISTS staff (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        version INTEGER NOT NULL,
        active INTEGER NOT NULL,
        changed_at REAL NOT NULL,
        doc TEXT NOT NULL
    )""",
    # Append-only: the store has no statement that updates or deletes a row here. An entry that
    # does not say who did what is refused (ValueError), and with it the state change it records.
    """CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        actor TEXT NOT NULL CHECK (actor <> ''),
        action TEXT NOT NULL CHECK (action <> ''),
        subject TEXT NOT NULL,
        before_value TEXT,
        after_value TEXT,
        reason TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject, id)""",
    # -- incidents --------------------------------------------------------------------------
    """CREATE TABLE IF NOT EXISTS incidents (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        category TEXT NOT NULL,
        district TEXT,
        town TEXT,
        village TEXT,
        cell TEXT,
        reported_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        next_due REAL,
        late_at REAL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL,
        -- Unused by the one SQLite node (its single writer needs no lease); kept so that both
        -- dialects' incidents have the same columns (PostgreSQL leases due cases with it).
        claimed_until REAL
    )""",
    "CREATE INDEX IF NOT EXISTS incidents_recent ON incidents (reported_at, id)",
    "CREATE INDEX IF NOT EXISTS incidents_status ON incidents (status, reported_at, id)",
    "CREATE INDEX IF NOT EXISTS incidents_category ON incidents (category, reported_at, id)",
    # An area's cases in time order, with the status and category the lists combine with an
    # area tested in the index: "fire cases in this town" then walks index entries, not the
    # town's whole year row by row. (They replace the area indexes of time order only.)
    *(f"DROP INDEX IF EXISTS incidents_{level}" for level in q.AREA_LEVELS),
    *(f"CREATE INDEX IF NOT EXISTS incidents_in_{level} ON incidents ({columns})"
      for level, columns in q.AREA_INDEXES),
    "CREATE INDEX IF NOT EXISTS incidents_due ON incidents (next_due) WHERE next_due IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS incidents_late ON incidents (late_at) WHERE late_at IS NOT NULL",
    """CREATE INDEX IF NOT EXISTS incidents_open_cell ON incidents (cell, category)
        WHERE status NOT IN ('closed', 'cancelled')""",
    # The open cases (a backlog of a few per cent of them) once more, in time order with the
    # columns open-case filters test, so that "accepted in this town" or "overdue for this
    # department" walk the backlog, index only, instead of a year of the town's or the
    # department's cases row by row (see `incident_sql.list_query`).
    *(f"""CREATE INDEX IF NOT EXISTS incidents_open_{name} ON incidents ({columns})
        WHERE status NOT IN ('closed', 'cancelled')""" for name, columns in q.OPEN_INDEXES),
    """CREATE TABLE IF NOT EXISTS incident_departments (
        department TEXT NOT NULL,
        reported_at REAL NOT NULL,
        incident_id TEXT NOT NULL,
        PRIMARY KEY (department, reported_at, incident_id)
    ) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS incident_departments_incident
        ON incident_departments (incident_id)""",
    """CREATE TABLE IF NOT EXISTS incident_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id TEXT NOT NULL,
        at REAL NOT NULL,
        doc TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events (incident_id, id)",
    """CREATE TRIGGER IF NOT EXISTS incident_events_no_update BEFORE UPDATE ON incident_events
        BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS incident_events_no_delete BEFORE DELETE ON incident_events
        BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END""",
    """CREATE TABLE IF NOT EXISTS incident_reports (
        key TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL,
        at REAL NOT NULL,
        doc TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS incident_reports_incident ON incident_reports (incident_id, at)",
    # -- records ----------------------------------------------------------------------------
    """CREATE TABLE IF NOT EXISTS records (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        due REAL,
        uniq TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS records_unique ON records (kind, uniq) "
    "WHERE uniq IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS records_owner ON records (kind, owner, created, id)",
    "CREATE INDEX IF NOT EXISTS records_status ON records (kind, status, created, id)",
    "CREATE INDEX IF NOT EXISTS records_recent ON records (kind, created, id)",
    "CREATE INDEX IF NOT EXISTS records_due ON records (kind, due) WHERE due IS NOT NULL",
]
