"""API credentials: random bearer tokens with a role, stored as SHA-256 digests."""

from hub.auth.keys import ApiKeyInfo, ApiKeyService, IssuedKey, Principal, hash_token, parse_token

__all__ = ["ApiKeyInfo", "ApiKeyService", "IssuedKey", "Principal", "hash_token", "parse_token"]
