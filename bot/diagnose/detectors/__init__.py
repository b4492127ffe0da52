"""Deterministic detectors, one module per family of runbooks.

Each module exports ``DETECTORS`` (functions ``Investigation -> list[Finding]``) and ``CODES``
(the finding codes they can produce). Detectors only read, through ``Investigation.tool``; they
never raise for a missing source (a down backend is recorded as unreachable by the
investigation, and the detector simply has no evidence). No Slack, no writes here.
"""
