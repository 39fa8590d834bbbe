"""The chart: a patient's history, trends, what is due, screening forms and their results."""
