"""The PostgreSQL store's whole schema, in one place: every table and index of every
aggregate, run as one script when a store opens. `tests/store/test_schema_parity.py` holds it
to sqlite_schema.py's.
"""

from __future__ import annotations

from cityops.store import incident_sql as q


def _area_indexes(s: str) -> str:
    # An area's cases with the status and category tested in the index (see sqlite_schema).
    return "\n".join([*(f"DROP INDEX IF EXISTS {s}.incidents_{level};" for level in q.AREA_LEVELS),
                      *(f"CREATE INDEX IF NOT EXISTS incidents_in_{level} ON {s}.incidents "
                        f"({columns});" for level, columns in q.AREA_INDEXES)])


def _open_indexes(s: str) -> str:
    # The open-case twins of the filter indexes (see `incident_sql.list_query`).
    return "\n".join(f"CREATE INDEX IF NOT EXISTS incidents_open_{name} ON {s}.incidents "
                     f"({columns}) WHERE status NOT IN ('closed', 'cancelled');"
                     for name, columns in q.OPEN_INDEXES)


def schema_sql(s: str) -> str:
    # `s` is the quoted schema name; columns that are sorted or joined on use the "C" collation
    # so the order matches Python's and the other backends', whatever the database's locale.
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.devices (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text COLLATE "C" PRIMARY KEY,
    kind text NOT NULL,
    village text,
    doc json NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_kind ON {s}.devices (kind);
CREATE INDEX IF NOT EXISTS devices_village ON {s}.devices (village);
CREATE TABLE IF NOT EXISTS {s}.api_keys (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    role text NOT NULL,
    scope text NOT NULL,
    name text NOT NULL,
    created_at double precision NOT NULL,
    revoked boolean NOT NULL,
    expires_at double precision
);
CREATE TABLE IF NOT EXISTS {s}.latest (
    device_id text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    ts_us bigint NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (device_id, channel)
) WITH (fillfactor = 70);  -- room on each page, so rewriting a value can be a HOT update
CREATE TABLE IF NOT EXISTS {s}.dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    place text NOT NULL,
    reason text NOT NULL,
    payload text NOT NULL,
    received_at double precision NOT NULL,
    item bigint
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON {s}.dead_letters (received_at);
-- Alerts are kept whole as JSON: the columns beside `doc` exist to be filtered and sorted on.
-- Each filter has an index that ends in (first_seen, id), so a page newest first is read off
-- the index in order instead of being sorted.
CREATE TABLE IF NOT EXISTS {s}.alerts (
    id text COLLATE "C" PRIMARY KEY,
    scenario text NOT NULL,
    district text,
    town text,
    village text,
    active boolean NOT NULL,
    first_seen double precision NOT NULL,
    doc json NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_recent ON {s}.alerts (first_seen, id);
CREATE INDEX IF NOT EXISTS alerts_scenario ON {s}.alerts (scenario, first_seen, id);
CREATE INDEX IF NOT EXISTS alerts_district ON {s}.alerts (district, first_seen, id);
CREATE INDEX IF NOT EXISTS alerts_town ON {s}.alerts (town, first_seen, id);
CREATE INDEX IF NOT EXISTS alerts_village ON {s}.alerts (village, first_seen, id);
CREATE INDEX IF NOT EXISTS alerts_active ON {s}.alerts (active, first_seen, id);
CREATE TABLE IF NOT EXISTS {s}.area_states (
    code text PRIMARY KEY,
    state text NOT NULL,
    changed_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.cell_owners (
    cell text PRIMARY KEY,
    owner text NOT NULL,
    changed_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.staff (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text COLLATE "C" PRIMARY KEY,
    version bigint NOT NULL,
    active boolean NOT NULL,
    changed_at double precision NOT NULL,
    doc json NOT NULL
);
-- Append-only: the store has no statement that updates or deletes a row here. An entry that
-- does not say who did what is refused (ValueError), and with it the state change it records.
CREATE TABLE IF NOT EXISTS {s}.audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor text NOT NULL CHECK (actor <> ''),
    action text NOT NULL CHECK (action <> ''),
    subject text NOT NULL,
    before_value text,
    after_value text,
    reason text NOT NULL,
    at double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON {s}.audit (subject, id);
-- incidents
CREATE TABLE IF NOT EXISTS {s}.incidents (
    id text COLLATE "C" PRIMARY KEY,
    status text NOT NULL,
    category text NOT NULL,
    district text,
    town text,
    village text COLLATE "C",
    cell text,
    reported_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    next_due double precision,
    late_at double precision,
    version integer NOT NULL,
    doc json NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_recent ON {s}.incidents (reported_at, id);
CREATE INDEX IF NOT EXISTS incidents_status ON {s}.incidents (status, reported_at, id);
CREATE INDEX IF NOT EXISTS incidents_category ON {s}.incidents (category, reported_at, id);
{_area_indexes(s)}
CREATE INDEX IF NOT EXISTS incidents_due ON {s}.incidents (next_due) WHERE next_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS incidents_late ON {s}.incidents (late_at) WHERE late_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS incidents_open_cell ON {s}.incidents (cell, category)
    WHERE status NOT IN ('closed', 'cancelled');
{_open_indexes(s)}
CREATE TABLE IF NOT EXISTS {s}.incident_departments (
    department text COLLATE "C" NOT NULL,
    reported_at double precision NOT NULL,
    incident_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (department, reported_at, incident_id)
);
CREATE INDEX IF NOT EXISTS incident_departments_incident
    ON {s}.incident_departments (incident_id);
CREATE TABLE IF NOT EXISTS {s}.incident_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id text COLLATE "C" NOT NULL,
    at double precision NOT NULL,
    doc json NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_events_incident ON {s}.incident_events (incident_id, id);
CREATE OR REPLACE FUNCTION {s}.refuse_timeline_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the incident timeline is append-only'; END $$;
DROP TRIGGER IF EXISTS incident_events_append_only ON {s}.incident_events;
CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON {s}.incident_events
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_timeline_change();
CREATE TABLE IF NOT EXISTS {s}.incident_reports (
    key text COLLATE "C" PRIMARY KEY,
    incident_id text COLLATE "C" NOT NULL,
    at double precision NOT NULL,
    doc json NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_reports_incident ON {s}.incident_reports (incident_id, at);
ALTER TABLE {s}.incidents ADD COLUMN IF NOT EXISTS claimed_until double precision;
-- records
CREATE TABLE IF NOT EXISTS {s}.records (
    kind text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    owner text COLLATE "C" NOT NULL,
    status text NOT NULL,
    due double precision,
    uniq text COLLATE "C",
    created double precision NOT NULL,
    updated double precision NOT NULL,
    version integer NOT NULL,
    doc text NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS records_unique ON {s}.records (kind, uniq)
    WHERE uniq IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_owner ON {s}.records (kind, owner, created, id);
CREATE INDEX IF NOT EXISTS records_status ON {s}.records (kind, status, created, id);
CREATE INDEX IF NOT EXISTS records_recent ON {s}.records (kind, created, id);
CREATE INDEX IF NOT EXISTS records_due ON {s}.records (kind, due) WHERE due IS NOT NULL;
"""
