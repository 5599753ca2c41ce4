"""Business services: the logic behind the API routes and CLI commands."""
