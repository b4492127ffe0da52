"""The lab's fake Kubernetes API server, built from a scenario.

Belongs here: the object store, the HTTP API (discovery, CRUD, patch, logs, scale, tables), the
scenario-to-objects builder and the simulated controllers (rollouts). Faithful to what the
official client and kubectl send and parse; nothing of the bot.
"""
