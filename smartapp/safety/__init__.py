"""Same-day safety follow-ups: the list and closing one with an outcome."""
