"""Console accounts: people with roles, argon2id passwords, sessions (docs/security.md §10)."""
