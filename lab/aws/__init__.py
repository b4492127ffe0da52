"""AWS facts the bot reads through the real boto3 APIs: ECR scan findings and EBS snapshots.

Belongs here: one lab server that speaks ECR's JSON 1.1 protocol (``X-Amz-Target``) and EC2's
query protocol (``Action=...``, XML answers) over a scenario's ``aws`` section and its PVCs.
Point ``AWS_ENDPOINT_URL_ECR`` and ``AWS_ENDPOINT_URL_EC2`` (or ``endpoint_url``) at it. No
boto3 or botocore here: the wire format is written out by hand, so the SDK checks it.
"""
