"""Alembic environment of the audit store (run by service.audit.migrate; no alembic.ini needed)."""
