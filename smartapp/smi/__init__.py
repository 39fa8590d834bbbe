"""Collaborative Care for serious mental illness: medical outcomes from the EHR, social status, the patient page."""
