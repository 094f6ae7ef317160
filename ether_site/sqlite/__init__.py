"""Django's SQLite backend, with database files only their owner can read (``base``)."""
