"""Shared test helpers (``from helpers import ...``; tests/ is on pytest's pythonpath)."""
