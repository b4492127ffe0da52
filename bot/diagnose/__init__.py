"""Runbooks, deterministic detectors and the investigation engine.

Belongs here: turning tool results into findings with evidence and codes. Not here: SDK calls
(use `tools/`), Slack formatting (`bot/slack/`), or writes to a cluster (`bot/fixes/`).
"""
