"""HTML templates of the report: ``string.Template`` files and one escaping rule.

Each page is a fragment (``report.html``, ``compare.html``, ``sweep.html``)
substituted into ``page.html`` with ``style.css``. Values are escaped with
:func:`html.escape` unless they are :class:`Markup` (HTML built by this
package from escaped parts: tables, lists, figures), so no caller escapes by
hand and no string reaches a page unescaped by accident. A placeholder
without a value raises ``KeyError`` (``Template.substitute``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import cache
from importlib import resources
from string import Template

__all__ = ["Markup", "escape", "list_items", "render_page"]


class Markup(str):
    """A string that is already HTML: inserted as is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """``value`` as HTML: :class:`Markup` unchanged, anything else escaped."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value)))


def list_items(items: Iterable[object]) -> Markup:
    """``<li>`` elements of escaped ``items`` (empty when there are none)."""
    return Markup("".join(f"<li>{escape(item)}</li>" for item in items))


@cache
def _template(name: str) -> Template:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return Template(text)


def render_page(fragment: str, *, title: str, **values: object) -> str:
    """A whole page: ``fragment`` (a template file here) inside ``page.html``."""
    body = _template(fragment).substitute(
        {"title": escape(title), **{k: escape(v) for k, v in values.items()}}
    )
    return _template("page.html").substitute(
        title=escape(title), style=_template("style.css").template, body=body
    )
