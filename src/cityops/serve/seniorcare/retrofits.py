"""Aging-friendly home retrofits through the one-stop desk: the citizen submits the
"aging_friendly_retrofit" bundle (assessment, works, subsidy; one form); the civil-affairs
assessor's visit is recorded here ("care_retrofit", one per submission, id the submission's),
and the assessment application is then moved on by the desk's own workflow (accepted,
approved, result issued with the findings), so its timeline, notices and the submission's
combined status are the one-stop ones. The works and subsidy applications are then decided by
their departments with the assessment in hand.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from cityops.domain.onestop.applications import Actor, Application, Status
from cityops.domain.seniorcare import retrofit as rules
from cityops.domain.seniorcare.admission import Hardship
from cityops.domain.seniorcare.errors import CareNotFound, CareRefused
from cityops.domain.seniorcare.retrofit import Assessment, Finding
from cityops.serve.seniorcare.tell import CitizenSource
from cityops.store.base import DuplicateKey, Record, Store

KIND = "care_retrofit"
BUNDLE = "aging_friendly_retrofit"
ASSESSMENT_ITEM = "aging_retrofit_assessment"


class RetrofitService:
    def __init__(self, store: Store, desk_of: Callable[[], object], *,
                 now: Callable[[], float], citizens: CitizenSource) -> None:
        self.store = store
        self._desk_of = desk_of  # the one-stop desk, made when first needed
        self.now = now
        self.citizens = citizens

    @property
    def desk(self):  # cityops.serve.onestop.desk.ApplicationDesk
        return self._desk_of()

    async def application(self, app_id: str) -> Application:
        app = await self.desk.find(app_id)
        if app is None or app.item != ASSESSMENT_ITEM:
            raise CareNotFound(f"no retrofit assessment application {app_id!r}")
        return app

    async def assess(self, app: Application, actor: Actor, findings: list[Finding], *,
                     hardship: Hardship | None = None, note: str = "") -> Assessment:
        """Record the findings and move the assessment application on to its result. The
        findings are stored first and the moves follow, each the desk's own version-checked
        save; a call cut short between them is finished by the next one (with the findings
        first recorded), so an application is never left assessed but undecided."""
        done = await self.get(app.submission)
        if done is not None and (done.application != app.id
                                 or app.status is Status.RESULT_ISSUED):
            raise CareRefused(f"the home of submission {app.submission} is assessed already",
                              "care_assessed_already")
        if done is None:
            done = await self._record(app, actor, findings, hardship, note)
        if app.status is Status.SUBMITTED:
            app = await self.desk.act(app.id, "accept", actor)
        if app.status is Status.ACCEPTED:
            app = await self.desk.act(app.id, "approve", actor)
        if app.status is Status.APPROVED:
            await self.desk.act(app.id, "issue_result", actor, note=rules.summary(done))
        return done

    async def _record(self, app: Application, actor: Actor, findings: list[Finding],
                      hardship: Hardship | None, note: str) -> Assessment:
        if app.status not in (Status.SUBMITTED, Status.ACCEPTED):
            raise CareRefused(f"application {app.id} is {app.status.value}: an assessment is "
                              "recorded on a submitted or accepted application",
                              "care_not_assessable")
        if hardship is None:
            citizen = await self.citizens.get(app.applicant)
            value = citizen.attributes.get("hardship") if citizen is not None else None
            hardship = Hardship(value) if value in set(Hardship) else Hardship.NONE
        now = self.now()
        done = rules.assess(submission=app.submission, application=app.id,
                            citizen=app.applicant, area=app.area,
                            assessor=actor.name or actor.key_id, now=now, hardship=hardship,
                            findings=findings, note=note)
        try:
            await self.store.put_record(Record(
                kind=KIND, id=app.submission, doc=msgspec.json.encode(done),
                owner=app.applicant, status="assessed", unique=app.id, created=now,
                updated=now))
        except DuplicateKey:
            raise CareRefused(f"the home of submission {app.submission} is being assessed "
                              "by another call; look again", "care_assessed_already") from None
        return done

    async def get(self, submission: str) -> Assessment | None:
        rec = await self.store.get_record(KIND, submission)
        return None if rec is None else msgspec.json.decode(rec.doc, type=Assessment)
