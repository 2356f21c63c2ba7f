"""The one exception a bad input raises: its message names the table, column or field."""


class DataError(ValueError):
    """The input cannot be processed as the spec describes; nothing is written."""
