"""The registry: programs, enrolment resources, worklist rows, billing."""
