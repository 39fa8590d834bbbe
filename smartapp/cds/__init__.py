"""Tandem's CDS Hooks service: discovery, the `patient-view` cards, feedback, and the card-to-launch hand-over."""
