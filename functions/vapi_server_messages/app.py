"""POST /webhooks/vapi/server-messages: Vapi server messages."""

from callvault.ingest import webhook_handler
from callvault.vendors import vapi

lambda_handler = webhook_handler(vapi.ADAPTER, "server-messages")
