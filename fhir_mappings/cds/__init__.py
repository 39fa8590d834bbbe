"""CDS Hooks, the pure part: reading a request's prefetch, and the cards Tandem gives for a patient."""
