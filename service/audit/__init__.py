"""The audit trail: what the service advised, when, to whom, and under which knowledge version."""
