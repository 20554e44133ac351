"""POST /webhooks/cozmox/server-messages: cozmox server messages."""

from callvault.ingest import webhook_handler
from callvault.vendors import cozmox

lambda_handler = webhook_handler(cozmox.ADAPTER, "server-messages")
