"""``GET /files/{id}``: stored files the portals download (``DuongDanTepTinKetQua``).

Public by design (the portals fetch result papers without hub credentials); ids carry 192
random bits. The SHA-256 is the strong ETag, so re-downloads can be conditional.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from hub.api.deps import FilesDep, public

router = APIRouter(
    tags=["files"],
    dependencies=[Depends(public("the portals download result papers without hub credentials; 192-bit ids"))],
)


@router.get("/files/{file_id}", summary="Download a stored file", response_model=None)
def download(file_id: str, request: Request, files: FilesDep) -> Response:
    info, path = files.get(file_id)
    etag = f'"{info.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(info.filename)}",
    }
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    return FileResponse(path, media_type=info.media_type, headers=headers)
