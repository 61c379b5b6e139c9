"""A database backend: Django's SQLite, with connections kept open between requests (base.py)."""
