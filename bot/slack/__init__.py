"""Slack: the bolt app, listeners and Block Kit builders.

The only package that imports slack_bolt. Builders are pure functions; listeners get what they
need passed in. Not here: diagnosis or fix logic.
"""
