"""The runbook in one command (DESIGN section 8): the draft as the candidate, publish, env promotion."""
