"""Audit store migrations, one file per revision (0001_initial, ...). Never edit a released revision."""
