"""Sandbox EHR: a development tool shipped with Tandem.

A SMART authorization server (Authlib), a FHIR endpoint that behaves like an EHR in front of a local FHIR server,
an EHR-like launcher, and a synthetic data generator. Never deployed at a hospital.
"""

from pathlib import Path

#: The demo's stand-in for a practice's licensed copies of site-supplied instruments (placeholder wording only).
SITE_INSTRUMENTS = Path(__file__).resolve().parent / "site_instruments"
#: The demo's stand-in for a site's value-set expansions (the sandbox EHR's local delivery code).
SITE_VALUESETS = Path(__file__).resolve().parent / "site_valuesets.json"
