"""A local stand-in for a GPU cluster, built from one scenario file.

Belongs here: the scenario loader and the fake or real servers the bot talks to in tests, the
demo and the eval. Never used by `opsbot serve` against a real cluster; nothing in `bot/` or
`tools/` imports it (the CLI only registers its commands).
"""
