"""The error tree: one module, drawn in its docstring, mapped to HTTP statuses in one table."""

from __future__ import annotations

import inspect

import pytest

from hub.api.errors import HTTP_STATUS, http_status_for
from schemas import errors

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.HubError) and cls.__module__ == errors.__name__
]


def test_every_error_class_is_drawn_in_the_hierarchy_docstring() -> None:
    doc = errors.__doc__ or ""
    missing = [cls.__name__ for cls in ERROR_CLASSES if f" {cls.__name__} " not in doc.replace("\n", " \n")]
    assert missing == []


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_each_error_is_either_retryable_or_permanent(cls: type[errors.HubError]) -> None:
    if cls is errors.HubError:
        return
    assert issubclass(cls, errors.RetryableError) != issubclass(cls, errors.PermanentError)
    assert cls.retryable is issubclass(cls, errors.RetryableError)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_each_error_has_its_own_stable_code_and_an_http_status(cls: type[errors.HubError]) -> None:
    siblings = [other for other in ERROR_CLASSES if other.code == cls.code]
    assert siblings == [cls]
    status = http_status_for(cls("x"))
    assert 400 <= status <= 599


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidInputError("x"), 422),
        (errors.MalformedJsonError("x"), 400),
        (errors.UnsafeXmlError("x"), 400),
        (errors.PayloadTooLargeError("x"), 413),
        (errors.NotPdfError("x"), 422),
        (errors.InvalidTransitionError("x"), 409),
        (errors.NotFoundError("x"), 404),
        (errors.AuthenticationError("x"), 401),
        (errors.PermissionDeniedError("x"), 403),
        (errors.TokenPinError("x"), 401),
        (errors.ExternalSigningExpiredError("x"), 410),
        (errors.TooManyRequestsError("x"), 429),
        (errors.EndpointTimeoutError("x"), 503),
        (errors.FeatureNotConfiguredError("x"), 503),
        (errors.ConfigurationError("x"), 500),
    ],
)
def test_status_of_an_error_is_that_of_its_nearest_mapped_class(error: errors.HubError, status: int) -> None:
    assert http_status_for(error) == status


def test_the_status_table_names_only_classes_of_the_error_tree() -> None:
    assert set(HTTP_STATUS) <= set(ERROR_CLASSES)
