"""How long one AWS request may take. Apart from ``aws.py`` so the settings check against it without importing
boto3 (the command-line tools read the settings and need no AWS client)."""

# DynamoDB, EventBridge, Secrets Manager, SQS and S3 answer these requests in tens of milliseconds; a read timeout
# is between two reads of the socket, so it does not limit how long a large upload takes.
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 3
ATTEMPTS = 3  # botocore's "standard" mode: throttling and 5xx retried with jittered backoff
# The longest one attempt can take: an attempt starts only with this much time left (UPLOAD_RESERVE_MS, the time
# kept for the writes after the last provider call, is at least this).
ATTEMPT_MS = (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) * 1000
