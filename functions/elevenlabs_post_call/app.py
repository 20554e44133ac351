"""POST /webhooks/elevenlabs/post-call: ElevenLabs post-call webhooks (transcription, audio, initiation failure)."""

from callvault.ingest import webhook_handler
from callvault.vendors import elevenlabs

lambda_handler = webhook_handler(elevenlabs.ADAPTER, "post-call")
