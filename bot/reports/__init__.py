"""Daily and weekly checks, report assembly and charts.

Belongs here: computing check results and shaping them into reports. Not here: posting (that is
`bot/slack/`) or scheduling (`bot.scheduler`).
"""
