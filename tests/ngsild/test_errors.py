"""ProblemDetails: every ETSI kind with its status, and the route layer's refusals in the
same shape (what the ETSI suite checks: type, a title and a detail that differ)."""

from __future__ import annotations

import pickle

import pytest

from cityops.api.errors import ApiError
from cityops.api.route import _status_for
from cityops.ngsild.errors import KINDS, NgsiError, problem_of

STATUS = {"InvalidRequest": 400, "BadRequestData": 400, "AlreadyExists": 409,
          "OperationNotSupported": 422, "ResourceNotFound": 404, "InternalError": 500,
          "TooComplexQuery": 403, "TooManyResults": 403, "LdContextNotAvailable": 503,
          "NoMultiTenantSupport": 501, "NonexistentTenant": 404}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_has_its_status_type_and_mapping(kind: str) -> None:
    error = NgsiError(kind, "q: the field at fault")
    body = error.problem()
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}"
    assert body["status"] == STATUS[kind] == _status_for(error)
    assert body["title"] and body["detail"] == "q: the field at fault"
    assert body["title"] != body["detail"]
    assert isinstance(error, NgsiError) and error.kind == kind
    assert pickle.loads(pickle.dumps(error)).problem() == body


def test_status_override_and_unknown_kinds() -> None:
    assert NgsiError("InvalidRequest", "Accept", 406).problem()["status"] == 406
    with pytest.raises(ValueError):
        NgsiError("NoSuchKind", "x")


def test_the_route_layer_refusals_as_problems() -> None:
    try:
        try:
            raise NgsiError("TooManyResults", "limit: at most 1000")
        except NgsiError:
            raise ApiError(403, "limit: at most 1000") from None
    except ApiError as mapped:
        assert problem_of(mapped)["type"].endswith("TooManyResults")
    assert problem_of(ApiError(400, "body is not JSON: x"))["type"].endswith("InvalidRequest")
    assert problem_of(ApiError(404, "no entity"))["type"].endswith("ResourceNotFound")
    unauthorized = problem_of(ApiError(401, "a key is required"))
    assert unauthorized["type"] == "about:blank" and unauthorized["title"] == "Unauthorized"
    assert problem_of(ApiError(413, "too big"))["status"] == 413
