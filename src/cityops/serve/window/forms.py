"""The form a clerk pushes during a call, and the citizen's values saved to the application.

The form is the application's catalogue item's own (`merge_form` of that one item), filled in
with what the application already holds; only its fields travel (materials are handed in on
the portal or at the hall, not over a call). The values come back checked by the same rules as
a submission (`check_answers`), and are saved onto the application version-checked, with an
event on its timeline, so the department sees who changed what and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from cityops.domain.onestop.applications import Application, Event
from cityops.domain.onestop.forms import check_answers, merge_form
from cityops.serve.onestop.desk import (
    APPLICATION,
    ApplicationDesk,
    FormProblems,
    NotFound,
    _app,
    _record,
    form_view,
)
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

MAX_VALUES = 200  # fields in one filled form; a catalogue item asks a few dozen at most


class FormClosed(Exception):
    """The application was decided meanwhile: nothing more is taken over the call."""

    code = "window_application_closed"


def pushed_form(desk: ApplicationDesk, app: Application) -> dict[str, Any]:
    item = desk.cat.item(app.item)
    if item is None:  # the catalogue changed since the application was made
        raise NotFound(f"service item {app.item!r} is no longer in the catalogue")
    view = form_view(merge_form([item]), [item], app.answers, None)
    return {"application": app.id, "item": app.item, "item_name": app.item_name,
            "fields": view["fields"]}


async def save_values(desk: ApplicationDesk, app_id: str, values: Mapping[str, Any],
                      actor: str) -> Application:
    """The application with the citizen's checked values; FormProblems naming each field at
    fault, FormClosed once it is decided."""
    if len(values) > MAX_VALUES:
        raise FormProblems([f"at most {MAX_VALUES} fields in one form"])

    def step(rec: Any) -> RecordDecision[Application]:
        if rec is None:
            raise NotFound(f"no application {app_id!r}")
        app = _app(rec.doc)
        if not app.open:
            raise FormClosed(f"application {app.id} is {app.status.value}: it takes no "
                             "more answers")
        item = desk.cat.item(app.item)
        if item is None:
            raise NotFound(f"service item {app.item!r} is no longer in the catalogue")
        clean, problems = check_answers(merge_form([item]), values, app.answers)
        if problems:
            raise FormProblems(problems)
        now = desk.now()
        changed = sorted(k for k, v in clean.items() if app.answers.get(k) != v)
        event = Event(at=now, action="window_form", actor=actor, role="citizen",
                      before=app.status.value, after=app.status.value,
                      reason="filled in during a video call", data={"fields": changed})
        new = msgspec.structs.replace(app, answers={**app.answers, **clean},
                                      timeline=[*app.timeline, event])
        return _record(new, rec.created, now), new

    try:
        return await update_record(desk.store, APPLICATION, app_id, step, tries=5)
    except UpdateGaveUp:
        raise FormClosed(f"application {app_id} kept changing; send the form again") from None
