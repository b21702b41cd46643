"""Reviews through the API: rating finished hotline orders and incidents, one re-rating, the
follow-ups of a bad review with their deadlines and moves, masking, and the figures."""

from __future__ import annotations

from .conftest import HERE, MONDAY_10, VILLAGE, Clock

CITIZEN = {"id": "c-1", "name": "Li Wei", "phone": "13812345678", "area": VILLAGE}


async def finished_order(op, san, **extra) -> str:
    r = await op.post("/api/v1/hotline/orders", json={
        "type": "help", "title": "Lift broken", "citizen_id": "c-1", "area": VILLAGE,
        "department": "sanitation", **extra})
    number = r.json()["number"]
    path = f"/api/v1/hotline/orders/{number}"
    await san.post(f"{path}/actions/contact")
    r = await san.post(f"{path}/actions/answer", json={"answer": "repaired"})
    assert r.json()["status"] == "answered"
    return number


async def closed_incident(op, san) -> str:
    r = await op.post("/api/v1/incidents", json={
        "category": "event.sanitation.exposed_garbage", **HERE, "key": "rv-1"})
    path = f"/api/v1/incidents/{r.json()['id']}"
    await op.post(f"{path}/actions/register")
    r = await op.post(f"{path}/actions/dispatch", json={"departments": ["sanitation"]})
    order = r.json()["orders"][0]["id"]
    await san.post(f"/api/v1/work-orders/{order}/actions/accept")
    await san.post(f"/api/v1/work-orders/{order}/actions/finish", json={"note": "cleared"})
    await op.post(f"{path}/actions/verify")
    r = await op.post(f"{path}/actions/close")
    assert r.json()["status"] == "closed", r.text
    return r.json()["id"]


async def test_rate_rerate_follow_ups_and_figures(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        san = live.client(await live.key("department", "sanitation"))
        pol = live.client(await live.key("department", "police"))
        me = live.client(await live.key("citizen", name="c-1"))
        other = live.client(await live.key("citizen", name="c-2"))
        await op.post("/api/v1/citizens", json=CITIZEN)
        number = await finished_order(op, san)

        body = {"subject_kind": "hotline_order", "subject_id": number,
                "grade": "dissatisfied", "comment": "ring me on 13812345678"}
        assert (await op.post("/api/v1/reviews", json=body)).status_code == 403
        assert (await other.post("/api/v1/reviews", json=body)).status_code == 404
        r = await me.post("/api/v1/reviews", json=body)
        assert r.status_code == 201, r.text
        review = r.json()
        assert review["grade"] == "dissatisfied" and review["bad"]
        assert len(review["follow_ups_opened"]) == 2 and review["rerate_left"] == 1
        assert review["comment"] == body["comment"]  # the citizen's own view

        tasks = (await san.get("/api/v1/review-tasks")).json()["items"]
        assert sorted(t["kind"] for t in tasks) == ["callback", "rectification"]
        callback = next(t for t in tasks if t["kind"] == "callback")
        assert callback["due"] == MONDAY_10 + 86400  # one working day
        rectify = next(t for t in tasks if t["kind"] == "rectification")
        assert rectify["due"] == MONDAY_10 + 15 * 86400
        assert callback["citizen_phone"] == "138****5678"
        assert (await pol.get("/api/v1/review-tasks")).json()["items"] == []
        staff_view = (await op.get(f"/api/v1/reviews/{review['id']}")).json()
        assert staff_view["comment"] == "ring me on 138****5678"
        assert staff_view["citizen_phone"] == "138****5678"
        assert (await pol.get(f"/api/v1/reviews/{review['id']}")).status_code == 404
        assert (await other.get(f"/api/v1/reviews/{review['id']}")).status_code == 404

        r = await me.post("/api/v1/reviews", json={**body, "grade": "very_dissatisfied"})
        assert r.status_code == 200 and r.json()["follow_ups_opened"] == []  # still open
        r = await me.post("/api/v1/reviews", json={**body, "grade": "satisfied"})
        assert r.status_code == 409 and "changed once" in r.json()["error"]

        path = f"/api/v1/review-tasks/{callback['id']}/actions/done"
        assert (await san.post(path)).status_code == 409  # a note is required
        assert (await pol.post(path, json={"note": "x"})).status_code == 404
        r = await san.post(path, json={"note": "called, apologised"})
        assert r.status_code == 200 and r.json()["status"] == "done"
        assert (await san.post(path, json={"note": "again"})).status_code == 409

        # The rectification runs late: the scheduler flags it once and tells sanitation.
        clock.now = MONDAY_10 + 16 * 86400
        scheduler = live.node.serve.scheduler
        await scheduler.tick()  # the node's own loop may get there first: both are fine
        assert (await scheduler.tick())["review_tasks_overdue"] == 0
        assert any(n.kind == "review.task_overdue" and n.recipient == "sanitation"
                   for n in live.node.act.notifier.sent)
        late = (await san.get("/api/v1/review-tasks", params={"overdue": "true"})).json()
        assert [t["id"] for t in late["items"]] == [rectify["id"]]

        # Incidents: anyone may rate a closed one; an open one is refused.
        incident_id = await closed_incident(op, san)
        r = await other.post("/api/v1/reviews", json={
            "subject_kind": "incident", "subject_id": incident_id, "grade": "very_satisfied"})
        assert r.status_code == 201 and r.json()["departments"] == ["sanitation"]
        r = await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "lat": 31.19, "lon": 121.49,
            "key": "open-1"})
        r = await other.post("/api/v1/reviews", json={
            "subject_kind": "incident", "subject_id": r.json()["id"], "grade": "satisfied"})
        assert r.status_code == 409 and "only a finished one" in r.json()["error"]
        r = await other.post("/api/v1/reviews", json={
            "subject_kind": "licence", "subject_id": "x", "grade": "satisfied"})
        assert r.status_code == 400

        mine = (await me.get("/api/v1/reviews")).json()["items"]
        assert [r["subject_id"] for r in mine] == [number]
        bad = (await op.get("/api/v1/reviews", params={"grade": "very_dissatisfied"})).json()
        assert [r["subject_id"] for r in bad["items"]] == [number]

        r = await op.get("/api/v1/evaluation/reviews", params={"period": "2026-11-01..2026-12-31"})
        assert r.status_code == 200, r.text
        rows = {row["department"]: row for row in r.json()["items"]}
        s = rows["sanitation"]
        assert s["reviews"] == 2 and s["bad"] == 1 and s["satisfaction_rate"] == 0.5
        assert s["grades"]["very_dissatisfied"] == 1 and s["grades"]["very_satisfied"] == 1
        assert s["callbacks"] == 1 and s["callbacks_on_time"] == 1
        assert s["rectifications"] == 1 and s["overdue_tasks"] == 1
        assert rows["police"]["reviews"] == 0
        r = await san.get("/api/v1/evaluation/reviews", params={"period": "2026-11"})
        assert [row["department"] for row in r.json()["items"]] == ["sanitation"]
        assert (await other.get("/api/v1/evaluation/reviews")).status_code == 403
        assert (await op.get("/api/v1/evaluation/reviews",
                             params={"period": "soon"})).status_code == 400


async def test_a_town_operator_keeps_to_its_own_towns_reviews(tmp_path, city,
                                                              live_node) -> None:
    """Issue 12: an operator scoped to one town marked another town's follow-up done. A task
    is reached through the area of the review it follows up, as stored."""
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        san = live.client(await live.key("department", "sanitation"))
        me = live.client(await live.key("citizen", name="c-1"))
        town1 = live.client(await live.key("operator", "990001001"))
        town2 = live.client(await live.key("operator", "990001002"))
        await op.post("/api/v1/citizens", json=CITIZEN)
        number = await finished_order(op, san)
        r = await me.post("/api/v1/reviews", json={
            "subject_kind": "hotline_order", "subject_id": number, "grade": "dissatisfied"})
        assert r.status_code == 201, r.text
        review = r.json()
        task_id = review["follow_ups_opened"][0]
        path = f"/api/v1/review-tasks/{task_id}/actions/done"

        r = await town2.post(path, json={"note": "done from the wrong town"})
        assert r.status_code == 404
        assert (await live.node.serve.reviews.get_task(task_id)).status == "open"
        assert (await town2.get(f"/api/v1/reviews/{review['id']}")).status_code == 404
        assert (await town2.get("/api/v1/reviews")).json()["items"] == []
        assert (await town2.get("/api/v1/review-tasks")).json()["items"] == []

        assert len((await town1.get("/api/v1/review-tasks")).json()["items"]) == 2
        r = await town1.post(path, json={"note": "called back"})
        assert r.status_code == 200 and r.json()["status"] == "done"
