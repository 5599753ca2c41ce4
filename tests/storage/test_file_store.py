"""The content store (hub/storage/files.py): a repeated upload gives back the first file, what
differs is stored anew, and the metadata matches the row. On both backends."""

from __future__ import annotations

from pathlib import Path

from hub.db.session import Database
from hub.storage.files import FileStore

PDF = "application/pdf"


def test_a_repeated_upload_returns_the_first_copy(db: Database, tmp_path: Path) -> None:
    store = FileStore(db, tmp_path / "files", public_base_url="http://h/", max_bytes=10**6)
    first = store.save(
        b"%PDF-1.7 one", filename="dir/kết quả.pdf", media_type="Application/PDF; x=y", dossier_code="D1"
    )
    assert (first.filename, first.media_type, first.size, first.dossier_code, first.fresh) == (
        "kết quả.pdf",
        PDF,
        12,
        "D1",
        True,
    )
    assert first.created_at.tzinfo is not None
    again = store.save([b"%PDF-1.7 ", b"one"], filename="kết quả.pdf", media_type=PDF, dossier_code="D1")
    assert again == store.first_copy(first)
    assert (again.id, again.sha256, again.created_at, again.fresh) == (
        first.id,
        first.sha256,
        first.created_at,
        False,
    )
    assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == [first.id]  # the copy went
    other = store.save(b"%PDF-1.7 one", filename="khác.pdf", media_type=PDF, dossier_code="D1")
    assert (other.fresh, other.sha256) == (True, first.sha256)
    assert other.id != first.id
    info, path = store.get(first.id)
    assert info == again
    assert path.read_bytes() == b"%PDF-1.7 one"
