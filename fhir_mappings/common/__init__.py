"""Shared readers: tolerant access, identity, dates, patient, conditions, capability, export."""
