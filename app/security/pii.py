"""Personal data: AES-GCM encryption at rest, HMAC blind indexes, masking (DESIGN.md §5)."""
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

_NONCE = 12


def _subkey(purpose: bytes) -> bytes:
    """Derive a per-purpose 32-byte key from PII_KEY, so encryption and indexing never share one."""
    master = current_app.config["PII_KEY"].encode()
    return hmac.new(master, b"volunteer-cloud/" + purpose, hashlib.sha256).digest()


def encrypt(text: str | None) -> bytes | None:
    """Return nonce + AES-GCM ciphertext of ``text`` (None stays None)."""
    if text is None:
        return None
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(_subkey(b"encrypt")).encrypt(nonce, text.encode(), None)


def decrypt(blob: bytes | None) -> str | None:
    """Return the plaintext of ``encrypt(...)``; raises if the data was tampered with."""
    if blob is None:
        return None
    blob = bytes(blob)
    return AESGCM(_subkey(b"encrypt")).decrypt(blob[:_NONCE], blob[_NONCE:], None).decode()


def normalize_id(number: str) -> str:
    """ID numbers compare without spaces and with an upper-case check character."""
    return "".join(number.split()).upper()


def blind_index(kind: str, value: str) -> str:
    """Return an HMAC of ``value`` for exact lookup and uniqueness without decryption."""
    msg = f"{kind}:{normalize_id(value)}".encode()
    return hmac.new(_subkey(b"blind"), msg, hashlib.sha256).hexdigest()


def mask_id(number: str) -> str:
    """``410202199001011234`` -> ``4102************1234``; short numbers keep 2 + 2."""
    number = normalize_id(number)
    keep_head, keep_tail = (4, 4) if len(number) >= 15 else (2, 2)
    if len(number) <= keep_head + keep_tail:
        return "*" * len(number)
    return number[:keep_head] + "*" * (len(number) - keep_head - keep_tail) + number[-keep_tail:]


def mask_phone(phone: str | None) -> str | None:
    """``13812345678`` -> ``138****5678``."""
    if not phone:
        return phone
    digits = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
