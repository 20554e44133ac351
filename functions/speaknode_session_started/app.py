"""POST /webhooks/speaknode/session-started: speaknode SessionStarted."""

from callvault.ingest import webhook_handler
from callvault.vendors import speaknode

lambda_handler = webhook_handler(speaknode.ADAPTER, "session-started")
