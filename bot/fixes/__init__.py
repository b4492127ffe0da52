"""The fix catalog, proposal lifecycle and approval policy.

Belongs here: building bounded patches from fix codes and deciding whether one may be applied.
Not here: the write itself, which only `tools.changes` performs.
"""
