"""POST /webhooks/retell/events: Retell call webhooks."""

from callvault.ingest import webhook_handler
from callvault.vendors import retell

lambda_handler = webhook_handler(retell.ADAPTER, "events")
