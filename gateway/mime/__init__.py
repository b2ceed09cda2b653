"""Working with messages as MIME: reading text out of bodies and attachments, and the footer
surgery. Pure functions over message bytes, no I/O."""
