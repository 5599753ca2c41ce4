"""The audit log: one writer (:mod:`.log`), the hash chain (:mod:`.chain`), queries and exports
(:mod:`.query`). docs/security.md, "Audit log"."""
