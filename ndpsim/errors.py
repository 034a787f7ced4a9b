"""Error types. A `UserError` is the user's to fix (bad model, config or flag): the CLI
prints its message on one line and exits with code 2. Anything else is our bug (exit 1)."""


class UserError(Exception):
    """Bad input from the user: a model, a config file, a flag. CLI exit code 2."""


class ModelError(UserError):
    """The ONNX model cannot be read, is malformed, or is outside what ndpsim supports."""


class UnsupportedOpError(ModelError):
    """An op, attribute value or dtype the simulator does not implement (named in the message)."""


class InputShapesError(ModelError):
    """Inputs without a static shape; `flags` are the --input-shape flags that give them one."""

    def __init__(self, message: str, flags: str):
        super().__init__(message)
        self.flags = flags


class ConfigError(UserError):
    """An invalid hardware description, option or sweep specification (names the field)."""


class InputShapeWarning(UserWarning):
    """A dim the model leaves symbolic was given a value by default (its batch dim: 1)."""
