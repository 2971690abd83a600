"""Store errors: callers map them to 404 / 409 without knowing SQL."""


class NotFound(LookupError):
    """No such object for this user (or at all: the two are indistinguishable on purpose)."""


class InvalidUpdate(ValueError):
    """A write the render's state machine does not allow."""
