from typing import TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ApplicationError

ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_body(model: type[ModelT], data) -> ModelT:
    """Validates a (non-batch) request body; errors become the one error shape."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApplicationError(
            "The request is not valid.",
            code="invalid",
            details={
                "errors": [
                    {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]}
                    for e in exc.errors(include_url=False)
                ]
            },
        ) from None
