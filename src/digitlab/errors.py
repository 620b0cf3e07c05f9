"""The exceptions digitlab raises for problems a user can fix.

The CLI turns each into one line on stderr and a non-zero exit; anything else is a bug.
"""


class DigitlabError(Exception):
    """Base class: the message says what is wrong and what to do."""


class DataError(DigitlabError):
    """Data set files are missing, corrupt or unreadable."""


class CheckpointError(DigitlabError):
    """A file is not a usable digitlab (or tutorial) checkpoint."""


class ModelOutputNotFinite(CheckpointError):
    """The model's weights are finite, but what it computes is not (NaN or inf)."""


class ConfigError(DigitlabError):
    """A setting or flag has an impossible value."""


class OutputError(DigitlabError):
    """An output file or folder cannot be written: no permission, a file in the way, a full disk."""


class ImageError(DigitlabError):
    """An input image cannot be read."""


class ImageNotFound(ImageError):
    """The image file does not exist."""


class ImageTooLarge(ImageError):
    """The image has more pixels than the limit (refused from its header, undecoded)."""


class UnsupportedImage(ImageError):
    """Not an image, or not one in a format (or array shape and type) digitlab reads."""


class UnreadableImage(ImageError):
    """An image in a known format that cannot be decoded: truncated or damaged."""
