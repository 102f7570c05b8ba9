"""Command-line front end: one module per command group, registered by ``cli.py``."""
