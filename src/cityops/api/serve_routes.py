"""The serve side's routes (citizens and their report photos, 12345 hotline orders, reviews,
smart filing cabinets), kept here so that `app.py` takes them in one line. Fixed paths come
before the `{id}` ones that would otherwise swallow them (`/citizens/me`)."""

from __future__ import annotations

from starlette.routing import Route

from cityops.api import citizen_photos, citizens

POST = ["POST"]

ROUTES = [
    Route("/api/v1/citizens", citizens.post_citizen, methods=POST),
    Route("/api/v1/citizens/me", citizens.get_me),
    Route("/api/v1/citizens/me/photos", citizen_photos.post_photo, methods=POST),
    Route("/api/v1/citizen-photos/{name}", citizen_photos.get_photo),
    Route("/api/v1/citizens/{citizen_id}", citizens.get_citizen),
]
