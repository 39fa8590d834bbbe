"""The caseload: worklist, registry record, enrolment, contacts, case review, billing."""
