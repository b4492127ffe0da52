"""The lab's CloudWatch Logs: the API boto3's ``logs`` client speaks, over a scenario's logs.

Belongs here: the log store built from a scenario's ``logs`` section, the Logs Insights query
language (lexer, parser, evaluation with AWS's semantics), filter patterns, and the HTTP server
(``server.start_cloudwatch``). moto's Insights ignores ``filter``/``stats``/``parse``, so the lab
answers queries itself. Nothing of the bot, and no AWS SDK: the tests drive it through boto3.
"""
