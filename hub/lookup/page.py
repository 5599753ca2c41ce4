"""The public Vietnamese lookup page ``/tra-cuu?MHS=<code>&SGT=<ID number>`` (§8, Thanh Hóa).

Plain server-rendered HTML, UTF-8 and NFC, every value escaped; the ID number is never
echoed back into the page. No script; the one inline ``<style>`` is allowed by its hash in
:data:`PAGE_CSP` (CSP Level 3 §8.3 "hash-source"), the page sent with that policy.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from datetime import datetime
from html import escape

from hub.lookup.service import LookupView
from schemas.timefmt import VN_TZ

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.35rem;text-align:left}"
    ".late{color:#b00020;font-weight:bold}.ok{color:#1b5e20}form label{display:block;margin:.5rem 0}"
)

#: The page's Content-Security-Policy: its own inline style, forms to itself, nothing else.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _when(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y") if value else "—"


def _form(code: str, message: str | None, need_id: bool) -> str:
    notice = f'<p class="late" role="alert">{escape(message)}</p>' if message else ""
    id_field = (
        "<label>Số giấy tờ của chủ hồ sơ (CCCD/CMND)"
        ' <input name="SGT" inputmode="numeric" autocomplete="off" required></label>'
        if need_id
        else ""
    )
    return (
        f'{notice}<form method="get" action="/tra-cuu">'
        f'<label>Mã hồ sơ <input name="MHS" value="{escape(code)}" required size="34"></label>'
        f'{id_field}<button type="submit">Tra cứu</button></form>'
    )


def _result(view: LookupView) -> str:
    if view.late:
        timing = '<span class="late">Quá hạn</span>'
    elif view.finished_on_time:
        timing = '<span class="ok">Đúng hạn</span>'
    else:
        timing = "Trong hạn"
    rows = "".join(
        f"<tr><td>{_when(step.at)}</td><td>{escape(step.status_label_vi)}</td>"
        f"<td>{escape(step.handler)}</td><td>{escape(step.department or '')}</td>"
        f"<td>{escape(step.content)}</td></tr>"
        for step in view.steps
    )
    procedure = escape(view.procedure_name or view.procedure_code)
    return (
        f"<h2>Hồ sơ {escape(view.code)}</h2><dl>"
        f"<dt>Thủ tục</dt><dd>{procedure}</dd>"
        f"<dt>Trạng thái</dt><dd><strong>{escape(view.status_label_vi)}</strong> ({timing})</dd>"
        f"<dt>Ngày tiếp nhận</dt><dd>{_when(view.received_at)}</dd>"
        f"<dt>Ngày hẹn trả</dt><dd>{_when(view.due_at)}</dd>"
        f"<dt>Ngày có kết quả</dt><dd>{_when(view.finished_at)}</dd></dl>"
        "<h3>Quá trình xử lý</h3><table><thead><tr><th>Thời điểm</th><th>Trạng thái</th>"
        f"<th>Người xử lý</th><th>Phòng ban</th><th>Nội dung</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def render_page(
    *, code: str = "", view: LookupView | None = None, message: str | None = None, need_id: bool = True
) -> str:
    body = _result(view) if view is not None else _form(code, message, need_id)
    page = (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Tra cứu hồ sơ thủ tục hành chính</title><style>{_STYLE}</style></head><body>"
        "<h1>Tra cứu tình trạng hồ sơ</h1>"
        f"{body}</body></html>"
    )
    return unicodedata.normalize("NFC", page)
