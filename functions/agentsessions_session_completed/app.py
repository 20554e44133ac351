"""POST /webhooks/agentsessions/session-completed: agentsessions `session.*` events."""

from callvault.ingest import webhook_handler
from callvault.vendors import agentsessions

lambda_handler = webhook_handler(agentsessions.ADAPTER, "session-completed")
