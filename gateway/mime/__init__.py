"""Reading messages: text extraction from bodies and attachments."""
