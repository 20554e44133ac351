"""POST /webhooks/speaknode/conversation-complete: speaknode ConversationComplete."""

from callvault.ingest import webhook_handler
from callvault.vendors import speaknode

lambda_handler = webhook_handler(speaknode.ADAPTER, "conversation-complete")
