"""Integration modules that share one deployed pipeline (see conftest.py).

A package on purpose: pytest ends a package-scoped fixture after the package's last test only
for a directory with ``__init__.py``; for a plain directory it lives to the end of the session,
and the next module's own local cloud could not start (one emulator per process).
"""
