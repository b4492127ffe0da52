"""The lab's Slack: a Web API fake the bot's slack-sdk client talks to, and a sender of signed
events, slash commands and interactions to the bot, the way Slack delivers them.

Belongs here: the workspace (channels, users, user groups and their ids), the fake's state
(messages per channel and thread, reactions, files, views), its rate limits, and the sender.
Must not import slack_bolt (an import-linter contract) nor slack_sdk: the fake is checked
against the real SDK from the tests, so it cannot lean on the SDK's own idea of Slack.
"""
