"""The web console: server-rendered pages for people with accounts (docs/security.md §10)."""
