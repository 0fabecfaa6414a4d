"""Errors of the avatar domain, each with a stable code and the HTTP status the API maps it to."""

from __future__ import annotations

from omnirt.contracts.errors import OmniRTError


class AvatarInputError(OmniRTError, ValueError):
    """The uploaded portrait or video cannot be read."""

    code = "bad_avatar"
    http_status = 400

    def __init__(self, message: str, *, code: str = "bad_avatar") -> None:
        super().__init__(message)
        self.code = code


class AvatarTooLargeError(OmniRTError):
    code = "too_large"
    http_status = 413


class NoFaceDetectedError(OmniRTError, ValueError):
    code = "no_face_detected"
    http_status = 400

    def __init__(self, what: str = "the picture") -> None:
        super().__init__(
            f"No face was detected in {what}. Send face_box as [x, y, width, height] in pixels to say where it is."
        )


class AvatarNotFoundError(OmniRTError, LookupError):
    code = "avatar_not_found"
    http_status = 404

    def __init__(self, avatar_id: str) -> None:
        super().__init__(f"Avatar '{avatar_id}' does not exist (it may have been deleted).", details={"id": avatar_id})


class SessionRefusedError(OmniRTError):
    """A realtime session cannot start: the model cannot run here, or no worker can take it."""

    code = "model_unavailable"
    http_status = 503

    def __init__(self, message: str, *, code: str = "model_unavailable", reason: str = "") -> None:
        super().__init__(message, details={"reason": reason} if reason else None)
        self.code = code
