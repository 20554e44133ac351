"""POST /webhooks/voiceos/events: VoiceOS agent webhook events."""

from callvault.ingest import webhook_handler
from callvault.vendors import voiceos

lambda_handler = webhook_handler(voiceos.ADAPTER, "events")
