"""Patients (and parents with proxy access) answering their own questionnaires: from the patient portal's SMART
launch, or from a single-use link a care manager sends through the practice's own channel."""
