"""X API v2 response models, written once for the producer and the local tooling.

This package is the one piece of code both sides ship. It lives under ``functions/`` so that
``sam build`` copies it into every Lambda package (CodeUri ``functions/``), and the tooling's
wheel ships the same directory as a top-level package of its own (``package-dir`` in
pyproject.toml). It must therefore import nothing but pydantic and the standard library: no
``common``, no function package, no ``tweetlens``.
"""
