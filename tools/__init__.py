"""Read access to outside systems, one module per system, each returning a ToolResult.

Belongs here: SDK clients (kubernetes, boto3, prometheus-api-client), their error trees, output
budgets and redaction. Not here: anything from `bot/` or `lab/`; no module-level clients and no
environment reads (clients are built from Settings by the caller and passed in).
"""
