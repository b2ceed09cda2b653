"""Council mail gateway: a before-queue SMTP proxy that enforces a council's mail policy."""

__version__ = "0.1.0"
