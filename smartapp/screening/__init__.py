"""Saving screenings: the record kept in Redis, the registry transaction, EHR write-back and its queue."""
