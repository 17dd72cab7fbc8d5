"""Cursor paging as Coalesce does it: ``limit``, ``orderBy``, ``orderByDirection`` and
an exclusive ``startingFrom`` cursor; the answer's ``next`` is the following cursor."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from runner.sim.validation import bad_request

__all__ = ["Ordering", "PageQuery", "envelope", "page_query", "paginate"]

T = TypeVar("T")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 25


@dataclass(frozen=True)
class Ordering(Generic[T]):
    """How to sort items for one ``orderBy``, and what their cursors are.

    ``parse_cursor`` turns a ``startingFrom`` into a value comparable with ``key`` (or
    raises a 400); ``cursor_of`` gives the ``next`` of a page ending with an item.
    """

    key: Callable[[T], tuple[Any, ...]]
    cursor_of: Callable[[T], str]
    parse_cursor: Callable[[str], tuple[Any, ...]]


@dataclass(frozen=True)
class PageQuery:
    limit: int
    order_by: str
    descending: bool
    starting_from: str | None
    detail: bool


def page_query(
    params: Mapping[str, str], *, fields: Sequence[str], default_descending: bool
) -> PageQuery:
    """Read and check the paging parameters of a list request."""
    limit = _limit(params.get("limit"))
    order_by = params.get("orderBy")
    if order_by is not None and order_by not in fields:
        raise bad_request(
            f"Invalid orderBy: {order_by!r}", f"Expected one of: {', '.join(fields)}."
        )
    direction = params.get("orderByDirection")
    if direction is not None and direction not in ("asc", "desc"):
        raise bad_request(f"Invalid orderByDirection: {direction!r}", "Expected asc or desc.")
    starting_from = params.get("startingFrom")
    if starting_from is not None and order_by is None:
        raise bad_request(
            "startingFrom requires orderBy",
            "When using startingFrom, also send the orderBy the cursor belongs to "
            f"(one of: {', '.join(fields)}).",
        )
    return PageQuery(
        limit=limit,
        order_by=order_by or fields[0],
        descending=default_descending if direction is None else direction == "desc",
        starting_from=starting_from,
        detail=_flag(params.get("detail"), "detail"),
    )


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if text.isascii() and text.isdigit() and int(text) <= MAX_LIMIT:
        return int(text)
    raise bad_request(f"Invalid limit: {text!r}", f"Expected a whole number from 0 to {MAX_LIMIT}.")


def _flag(text: str | None, name: str) -> bool:
    if text is None:
        return False
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise bad_request(f"Invalid {name}: {text!r}", "Expected true or false.")


def paginate(
    items: Sequence[T], query: PageQuery, ordering: Ordering[T]
) -> tuple[list[T], str | None, int]:
    """One page of ``items``, the cursor of the next page (``None`` on the last) and
    the number of items in all pages."""
    key = ordering.key
    ordered = sorted(items, key=key, reverse=query.descending)
    if query.starting_from is not None:
        cursor = ordering.parse_cursor(query.starting_from)
        if query.descending:
            ordered = [item for item in ordered if key(item) < cursor]
        else:
            ordered = [item for item in ordered if key(item) > cursor]
    page = ordered[: query.limit]
    more = len(ordered) > len(page) and bool(page)
    return page, (ordering.cursor_of(page[-1]) if more else None), len(items)


def envelope(
    data: list[dict[str, Any]], query: PageQuery, next_cursor: str | None, total: int
) -> dict[str, Any]:
    """The answer around a page: ``{data, limit, orderBy, orderByDirection, total, next?}``."""
    body: dict[str, Any] = {
        "data": data,
        "limit": query.limit,
        "orderBy": query.order_by,
        "orderByDirection": "desc" if query.descending else "asc",
        "total": total,
    }
    if query.starting_from is not None:
        body["startingFrom"] = query.starting_from
    if next_cursor is not None:
        body["next"] = next_cursor
    return body
