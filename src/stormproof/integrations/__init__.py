"""stormproof where the calls are made: the clients that storms start from.

- ``stormproof.integrations.botocore``: protect a boto3/botocore client (and
  aiobotocore's) with stormproof's policies, in place of the SDK's own retries
  (extra ``[aws]``, ``[aioaws]``);
- ``stormproof.integrations.httpx``: sync and async httpx transports (extra ``[httpx]``);
- ``stormproof.integrations.requests``: a requests adapter (extra ``[requests]``).

Each module imports its client library when it is imported, never before.
"""
