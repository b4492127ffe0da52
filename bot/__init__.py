"""The opsbot application: triggers in, diagnoses and proposals out.

Belongs here: configuration, the store, alert intake, diagnosis, the agent, fixes, reports,
Slack and HTTP wiring. Not here: talking to outside systems directly (that is `tools/`), or
anything of the lab (only `bot.cli` registers the lab's commands).
"""
