"""App-only helpers (session state, background jobs) for ``app.py`` and ``pages/``; never imported by ``seqattn``."""
