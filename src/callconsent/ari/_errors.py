"""The one domain error the ARI client raises."""

from __future__ import annotations


class AriError(Exception):
    """A REST call to ARI failed: transport error, timeout or a non-2xx answer.

    ``status`` is the HTTP status, or ``None`` when no answer arrived (refused, reset, timeout).
    ``path`` is the request path as sent (URL-encoded, without the query string).
    The message never contains credentials.
    """

    def __init__(self, status: int | None, method: str, path: str, detail: str) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail
        super().__init__(f"ARI {method} {path} failed ({status or 'no response'}): {detail}")

    def __reduce__(self) -> tuple[type[AriError], tuple[int | None, str, str, str]]:
        return (type(self), (self.status, self.method, self.path, self.detail))


class AriNotFound(AriError):
    """ARI answered 404: the channel (playback, variable, ...) does not exist (any more)."""
