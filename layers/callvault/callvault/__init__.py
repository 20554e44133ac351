"""callvault: voice-AI webhooks stored exactly once in your own AWS account."""

__version__ = "0.2.0"
