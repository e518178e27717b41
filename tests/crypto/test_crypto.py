from app import crypto

def test_x() -> None:
    assert crypto.VERSION == 1
