"""The one error type a request can raise: the server answers it with its status and message."""

from __future__ import annotations


class RequestError(ValueError):
    """A client error; `status` is the HTTP status to answer with, `message` names the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
