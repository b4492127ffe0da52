"""The scenario format (shared/SCENARIOS.md): models, notation parsers and the file loader.

No I/O beyond reading the file; no servers here.
"""
