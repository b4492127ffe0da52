"""The fix catalog, proposal lifecycle and approval policy.

Belongs here: building bounded patches from fix codes and deciding whether one may be applied.
Not here: the write itself, which only `tools.changes` performs, or reading the cluster (the
caller passes the live object and a `model.FixContext`).

`catalog.build(code, obj, context=...)` is the entry point. `serving`, `podspec` and `cluster`
hold the builders; `vllm` and `argv` find where a vLLM setting lives; `builder`, `pointer` and
`quantity` are the mechanics (guarded ops, inverses, Kubernetes quantities).
"""
