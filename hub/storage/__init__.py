"""Files the hub serves by download URL (result papers the portals fetch)."""

from hub.storage.files import FileStore, StoredFileInfo

__all__ = ["FileStore", "StoredFileInfo"]
