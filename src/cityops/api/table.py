"""The route table: every HTTP route of a node, gathered from the features that declare them.

There is no other way to add a route: `create_app` serves exactly this table, the OpenAPI
document is generated from it, and tests/api/test_route_table.py fails for any route the app
serves that is not here. Order matters only where a fixed path and a `{param}` path share a
prefix (`/citizens/me` before `/citizens/{citizen_id}`): each feature lists its fixed paths
first, and features are listed in the order data flows (sense, detect, act, see, serve)."""

from __future__ import annotations

from cityops.api import (
    admin,
    alerts,
    applications,
    areas,
    benefits,
    cabinets,
    cameras,
    citizen_photos,
    citizen_reports,
    citizens,
    community,
    detection,
    devices,
    evaluation,
    field,
    hotline,
    incidents,
    kiosk,
    licences,
    lifecycle,
    live,
    mapdata,
    openapi,
    ops,
    pages,
    photos,
    queue,
    readings,
    replay_screen,
    reviews,
    rollups,
    roster,
    seniorcare,
    services,
    silences,
    staff,
    states,
    status,
    storms,
    window,
)
from cityops.api.route import Endpoint
from cityops.history import routes as history
from cityops.maps import routes as maps
from cityops.ngsild import routes as ngsild
from cityops.open311 import routes as open311
from cityops.reports import routes as reports

FEATURES = (ops, status, readings, history, areas, maps, mapdata, lifecycle, devices, cameras,
            states, alerts, detection, silences,
            incidents, storms, staff, field, photos, evaluation, live, replay_screen, pages, admin,
            roster, rollups, reports, community,
            citizens, citizen_photos, citizen_reports, hotline, reviews, cabinets,
            services, applications, licences, kiosk, queue, seniorcare, window, benefits,
            open311, ngsild, openapi)

TABLE: list[Endpoint] = [e for feature in FEATURES for e in getattr(feature, "ROUTES", [])]
