"""Issue 26 §4: a HealthySteps tier move without its version field was accepted (saved over whatever was there).
Every POST that changes the registry is listed here with how it is protected against a stale page: the forms that
update an existing record require the version the user saw (If-Match; 409 without it or with a stale one), the
others say why they need none. A new POST route fails this test until it is classified."""

from __future__ import annotations

from flask import Flask

#: Forms that update an existing registry resource the user saw: they must send its version (tested over HTTP in
#: tests/integration/test_registry_versions.py).
REQUIRES_VERSION = {
    "/app/<launch_id>/healthysteps/families/<careplan_id>/tier": "the CarePlan's tier history",
    "/app/<launch_id>/healthysteps/families/<careplan_id>/exit": "the CarePlan's phase and end",
    "/app/<launch_id>/healthysteps/families/<careplan_id>/referrals/<referral_id>": "the referral Task's status",
    "/app/<launch_id>/enrolments/<careplan_id>/update": "the CarePlan's phase and review flag",
}
#: The other POSTs, with why no version is needed.
NO_VERSION = {
    "/app/<launch_id>/healthysteps/families/<careplan_id>/contact": "creates a new contact Task",
    "/app/<launch_id>/healthysteps/families/<careplan_id>/referrals": "creates a new referral (new ids)",
    "/app/<launch_id>/healthysteps/enrol": "creates an enrolment (refused when one is active)",
    "/app/<launch_id>/enrol": "creates an enrolment (refused when one is active)",
    "/app/<launch_id>/enrolments/<careplan_id>/contact": "creates a contact; 'discuss' flags the freshly read "
    "enrolment with If-Match on that read",
    "/app/<launch_id>/enrolments/<careplan_id>/follow-up": "creates a follow-up Task",
    "/app/<launch_id>/enrolments/<careplan_id>/tasks/<task_id>/done": "one-way and idempotent (done stays done); "
    "If-Match on the fresh read",
    "/app/<launch_id>/enrolments/<careplan_id>/measure/<key>": "records a new measurement",
    "/app/<launch_id>/enrolments/<careplan_id>/link": "makes a new questionnaire link (Redis, not the registry)",
    "/app/<launch_id>/enrolments/<careplan_id>/social": "the day's answers by their derived ids: answering again "
    "the same day corrects them, by design",
    "/app/<launch_id>/review/<careplan_id>": "closes the open review Tasks with If-Match on a fresh read and adds "
    "the recommendations; a second review is recorded beside the first, never over it",
    "/app/<launch_id>/enrolments/<careplan_id>/recommendations/<task_id>/<int:index>": "sets one recommendation's "
    "status, signed with who and when, with If-Match on a fresh read (a mark of another recommendation meanwhile is "
    "kept); form_once refuses a replay",
    "/app/<launch_id>/safety/<task_id>/close": "one-way and idempotent (a closed follow-up stays closed); If-Match "
    "on the fresh read",
    "/app/<launch_id>/worklist/columns": "the user's own column choice (Redis), not the registry",
    "/app/<launch_id>/gestation": "the child's gestational age at birth: one value per child (derived id), "
    "recording it again corrects it, by design",
    "/app/<launch_id>/caregivers": "records a caregiver copy from the EHR",
    "/app/<launch_id>/screen/<key>": "a new screening (idempotent on its signed submission id)",
    "/app/<launch_id>/screenings/<record_id>/acknowledge": "one-way and idempotent (Redis record)",
    "/app/<launch_id>/screenings/<record_id>/safety-step": "adds a step by its own id to the safety Task read "
    "fresh, If-Match on that read and made again on the new version after a 412; a step already there is not "
    "added twice",
    "/app/<launch_id>/writebacks/retry": "retries queued EHR writes (Redis)",
    "/app/<launch_id>/writebacks/<record_id>/checked": "one-way and idempotent (Redis record)",
    "/app/<launch_id>/end": "ends the launch session",
    "/app/<launch_id>/me/q/<key>": "the patient's own new answers",
    "/app/<launch_id>/me/q/<key>/<int:number>": "the patient's answer to one question, kept in a draft (Redis) "
    "until the last one saves the questionnaire once",
    "/app/<launch_id>/parked/<item_id>/discard": "discards a form kept after its launch ended (Redis), one-way",
    "/app/<launch_id>/me/parked/<item_id>/discard": "the patient discards their own kept answers (Redis), one-way",
}


def test_every_registry_changing_post_is_classified(app: Flask) -> None:
    posts = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or set()) and rule.rule.startswith("/app/")
    }
    assert not set(REQUIRES_VERSION) & set(NO_VERSION)
    assert posts == set(REQUIRES_VERSION) | set(NO_VERSION), posts ^ (set(REQUIRES_VERSION) | set(NO_VERSION))
