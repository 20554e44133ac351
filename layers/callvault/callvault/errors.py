"""Errors the pipeline turns into responses."""


class StorageUnavailable(Exception):
    """S3 or DynamoDB could not be written: answer 503 so the vendor retries; nothing half-written."""
