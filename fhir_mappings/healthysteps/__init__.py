"""HealthySteps: the tiered program for children 0–3 and their caregivers (pure domain)."""
