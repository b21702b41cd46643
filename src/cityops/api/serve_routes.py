"""The serve side's routes (citizens and their report photos, 12345 hotline orders, reviews,
smart filing cabinets), kept here so that `app.py` takes them in one line. Fixed paths come
before the `{id}` ones that would otherwise swallow them (`/citizens/me`)."""

from __future__ import annotations

from starlette.routing import Route

from cityops.api import cabinets, citizen_photos, citizens

POST = ["POST"]

ROUTES = [
    Route("/api/v1/citizens", citizens.post_citizen, methods=POST),
    Route("/api/v1/citizens/me", citizens.get_me),
    Route("/api/v1/citizens/me/photos", citizen_photos.post_photo, methods=POST),
    Route("/api/v1/citizen-photos/{name}", citizen_photos.get_photo),
    Route("/api/v1/citizens/{citizen_id}", citizens.get_citizen),
    Route("/api/v1/cabinets", cabinets.list_cabinets),
    Route("/api/v1/cabinets", cabinets.post_cabinet, methods=POST),
    Route("/api/v1/cabinets/{cabinet_id}", cabinets.get_cabinet),
    Route("/api/v1/cabinets/{cabinet_id}/dropoff", cabinets.dropoff, methods=POST),
    Route("/api/v1/cabinets/{cabinet_id}/pickup", cabinets.pickup, methods=POST),
    Route("/api/v1/cabinet-items", cabinets.list_items),
    Route("/api/v1/cabinet-items/{item_id}", cabinets.get_item),
    Route("/api/v1/cabinet-items/{item_id}/actions/return", cabinets.return_item,
          methods=POST),
]
