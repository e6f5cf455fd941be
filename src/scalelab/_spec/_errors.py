"""The one error of a spec (no pydantic: the CLI imports it to report any command's failure)."""


class SpecError(ValueError):
    """A spec that cannot be run; the message is one actionable line."""
