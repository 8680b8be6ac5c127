"""PII: encryption at rest, blind index, masking."""
import pytest

from app.security import pii


def test_encrypt__round_trips_and_is_not_plaintext(app):
    with app.app_context():
        blob = pii.encrypt("41020219900307123X")
        assert b"41020219900307123X" not in blob
        assert pii.decrypt(blob) == "41020219900307123X"
        assert pii.encrypt("same") != pii.encrypt("same")  # random nonce


def test_decrypt__tampered_data_is_refused(app):
    with app.app_context():
        blob = bytearray(pii.encrypt("13812345678"))
        blob[-1] ^= 1
        with pytest.raises(Exception):
            pii.decrypt(bytes(blob))


def test_blind_index__stable_normalised_and_key_dependent(app):
    with app.app_context():
        a = pii.blind_index("resident", "41020219900307123x")
        assert a == pii.blind_index("resident", " 41020219900307123X ")
        assert a != pii.blind_index("passport", "41020219900307123X")
        app.config["PII_KEY"] = "another-key"
        assert pii.blind_index("resident", "41020219900307123X") != a


def test_masking__follows_design():
    assert pii.mask_id("41020219900307123X") == "4102**********123X"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_phone(None) is None
