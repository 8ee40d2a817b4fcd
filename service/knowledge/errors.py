"""The one error type for a knowledge base that cannot be loaded: start-up stops with it."""


class KnowledgeError(Exception):
    """A knowledge file is malformed. The message names the file, the rule (if any) and the field."""

    def __init__(self, file: str, message: str, *, rule: str | None = None, field: str | None = None):
        self.file, self.rule, self.field = file, rule, field
        where = file + (f", rule {rule}" if rule else "") + (f", field {field}" if field else "")
        super().__init__(f"{where}: {message}")
