"""Daily and weekly checks, report assembly and charts.

Belongs here: computing check results and shaping them into reports (``checks.run_checks`` is
the daily checklist; ``gpu_memory`` and ``verdict`` serve it). Reads go through an ``ask``
callable over the tool catalog, never an SDK. Not here: posting (that is `bot/slack/`) or
scheduling (`bot.scheduler`).
"""
