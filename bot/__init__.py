"""atlas-chatops: a Slack ChatOps bot for emergency, destructive MongoDB Atlas actions."""

__version__ = "0.1.0"
