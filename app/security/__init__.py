"""Security: permission vocabulary, roles as data, scope, PII protection."""
