"""Request and response schemas, kept apart: requests parse the edge into
domain values (int base units, UUIDs, aware UTC times), responses render
views and outcomes back (amounts as exact decimal strings)."""
