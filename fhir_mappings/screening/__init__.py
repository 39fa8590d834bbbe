"""Screening: the instrument catalogue, generic scoring, the resources a screening writes, history."""
