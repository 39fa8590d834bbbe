"""Dyadic care: a child's caregivers, read from the EHR where it exposes them and otherwise held in the registry."""
