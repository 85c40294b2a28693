"""Request-level errors in Zoho's envelope ``{"code", "details", "message", "status": "error"}`` (https://www.zoho.com/crm/developer/docs/api/v8/status-codes.html; crm-oas v8.0/common.json)."""

from __future__ import annotations

from typing import Any

# Both limits answer 429 TOO_MANY_REQUESTS; the message tells them apart (see the package docstring).
CREDITS_EXCEEDED_MESSAGE = "Number of API requests for the 24 hour period is exceeded"
CONCURRENCY_EXCEEDED_MESSAGE = "The concurrency limit of the user for the app is exceeded"
HEAVY_CONCURRENCY_EXCEEDED_MESSAGE = (
    "The concurrency limit of the user for the app is exceeded (sub-concurrency limit of complex APIs)"
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "details": details or {}, "message": message,
                                     "status": "error"}


def invalid_token() -> ApiError:
    return ApiError(401, "INVALID_TOKEN", "invalid oauth token")


def authentication_failure() -> ApiError:
    return ApiError(401, "AUTHENTICATION_FAILURE", "Authentication failed")


def scope_mismatch() -> ApiError:
    return ApiError(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")


def invalid_module(index: int = 0) -> ApiError:
    return ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid",
                    {"resource_path_index": index})


def invalid_url() -> ApiError:
    return ApiError(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one")


def required_param(param: str) -> ApiError:
    return ApiError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": param})


def invalid_param(param: str, message: str = "invalid data") -> ApiError:
    return ApiError(400, "INVALID_DATA", message, {"param_name": param})


def limit_exceeded(limit: int, message: str = "the given data exceeds the limit", **details: Any) -> ApiError:
    return ApiError(400, "LIMIT_EXCEEDED", message, {"limit": limit, **details})


def too_many_requests(message: str) -> ApiError:
    return ApiError(429, "TOO_MANY_REQUESTS", message)


def internal_error() -> ApiError:
    return ApiError(500, "INTERNAL_ERROR", "Internal Server Error")
