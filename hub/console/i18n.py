"""Texts of the console: Vietnamese by default, English with ``?lang=en`` or Accept-Language."""

from __future__ import annotations

from typing import Literal

Lang = Literal["vi", "en"]

MESSAGES: dict[str, dict[str, str]] = {
    "vi": {
        "app": "Bảng điều khiển hệ thống liên thông một cửa",
        "login.title": "Đăng nhập",
        "login.username": "Tên đăng nhập",
        "login.password": "Mật khẩu",
        "login.submit": "Đăng nhập",
        "logout": "Đăng xuất",
        "home.title": "Trang chính",
        "home.hello": "Xin chào",
        "home.roles": "Vai trò",
        "home.pages": "Các trang bạn được truy cập",
        "home.none": "Chưa có trang nào cho vai trò của bạn.",
        "page.console.admin_users": "Quản lý tài khoản",
        "users.title": "Quản lý tài khoản",
        "users.username": "Tên đăng nhập",
        "users.display_name": "Họ và tên",
        "users.unit": "Đơn vị",
        "users.roles": "Vai trò",
        "users.state": "Trạng thái",
        "users.active": "Đang hoạt động",
        "users.disabled": "Đã khóa",
        "users.last_login": "Đăng nhập lần cuối",
        "users.actions": "Thao tác",
        "users.disable": "Khóa",
        "users.enable": "Mở khóa",
        "users.set_roles": "Đổi vai trò",
        "users.create": "Tạo tài khoản",
        "users.password": "Mật khẩu (tối thiểu 12 ký tự)",
        "users.created": "Đã tạo tài khoản",
        "users.changed": "Đã cập nhật tài khoản",
        "role.officer": "Cán bộ",
        "role.clerk": "Văn thư",
        "role.technician": "Kỹ thuật viên",
        "role.admin": "Quản trị",
        "forbidden.title": "Không có quyền",
        "forbidden.text": "Tài khoản của bạn không có quyền truy cập trang này.",
        "csrf.text": "Biểu mẫu đã hết hạn hoặc không hợp lệ. Hãy tải lại trang và thử lại.",
        "language": "English",
    },
    "en": {
        "app": "One-stop interoperability hub console",
        "login.title": "Log in",
        "login.username": "Username",
        "login.password": "Password",
        "login.submit": "Log in",
        "logout": "Log out",
        "home.title": "Home",
        "home.hello": "Hello",
        "home.roles": "Roles",
        "home.pages": "Pages you may open",
        "home.none": "No page for your roles yet.",
        "page.console.admin_users": "Accounts",
        "users.title": "Accounts",
        "users.username": "Username",
        "users.display_name": "Full name",
        "users.unit": "Unit",
        "users.roles": "Roles",
        "users.state": "State",
        "users.active": "Active",
        "users.disabled": "Disabled",
        "users.last_login": "Last login",
        "users.actions": "Actions",
        "users.disable": "Disable",
        "users.enable": "Enable",
        "users.set_roles": "Set roles",
        "users.create": "Create account",
        "users.password": "Password (at least 12 characters)",
        "users.created": "Account created",
        "users.changed": "Account updated",
        "role.officer": "Officer",
        "role.clerk": "Clerk (văn thư)",
        "role.technician": "Technician",
        "role.admin": "Admin",
        "forbidden.title": "Forbidden",
        "forbidden.text": "Your account may not open this page.",
        "csrf.text": "The form has expired or is invalid. Reload the page and try again.",
        "language": "Tiếng Việt",
    },
}


def choose_language(query: str | None, accept_language: str | None) -> Lang:
    """``?lang=`` first, then the first of vi/en in Accept-Language (RFC 9110 §12.5.4, by q)."""
    if query in ("vi", "en"):
        return "en" if query == "en" else "vi"
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in ("vi", "en") and quality > 0:
            ranked.append((-quality, index, primary))
    return "en" if ranked and min(ranked)[2] == "en" else "vi"
