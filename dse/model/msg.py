"""Messages the model and the search produce (notes, reasons, explanations), as data.

A ``Msg`` is a key, its English template and its fields. ``str(msg)`` is the English sentence
(the CLI prints it); a report in another language renders the same key from its own table
(``dse.report.i18n.MESSAGES``), so no generated sentence reaches a Chinese report in English.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Msg:
    key: str
    en: str
    fields: tuple[tuple[str, object], ...] = ()

    def __str__(self) -> str:
        return self.en.format(**dict(self.fields))


def msg(key: str, en: str, **fields: object) -> Msg:
    """A message: ``msg("note.x", "{n} layers", n=3)``."""
    return Msg(key, en, tuple(fields.items()))
