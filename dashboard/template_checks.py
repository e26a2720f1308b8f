"""E010/W011: the template the pages extend (`BASE_TEMPLATE`) loads and defines the blocks they fill.

A host base template without `extra_head` renders the dashboard without its styles and scripts, one
without `content` renders an empty page; both only show when someone opens the dashboard, so the check
says it at start-up instead.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.template import Context, TemplateDoesNotExist, TemplateSyntaxError
from django.template.base import FilterExpression
from django.template.base import Template as DjangoTemplate
from django.template.loader import get_template
from django.template.loader_tags import BlockNode, ExtendsNode

from dashboard.conf import merged_settings

REQUIRED_BLOCKS = ("title", "extra_head", "content")
# {% extends %} chains longer than this are not followed (Django itself has no limit but recursion).
MAX_PARENTS = 20


class Unreadable(Exception):
    """The chain of parents cannot be read without rendering (a variable {% extends %})."""


def template_blocks(name: str) -> set[str]:
    """Names of the blocks `name` and the templates it extends define."""
    blocks: set[str] = set()
    for _ in range(MAX_PARENTS):
        template = getattr(get_template(name), "template", None)
        if not isinstance(template, DjangoTemplate):
            raise Unreadable(f"{name!r} is not a Django template")
        nodes = template.nodelist
        blocks |= {node.name for node in nodes.get_nodes_by_type(BlockNode) if isinstance(node, BlockNode)}
        extends = [node for node in nodes.get_nodes_by_type(ExtendsNode) if isinstance(node, ExtendsNode)]
        if not extends:
            return blocks
        parent_name = extends[0].parent_name
        parent = (
            parent_name.resolve(Context(), ignore_failures=True)
            if isinstance(parent_name, FilterExpression)
            else None
        )
        if not isinstance(parent, str) or not parent:
            raise Unreadable(f"{name!r} extends a template named by a variable")
        name = parent
    raise Unreadable(f"more than {MAX_PARENTS} templates extend one another")


@register(Tags.templates)
def check_base_template(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E010 when BASE_TEMPLATE cannot be loaded, W011 when it lacks a block the pages fill."""
    name = merged_settings().get("BASE_TEMPLATE")
    if not isinstance(name, str) or not name:
        return [
            Error("BULLMQ_DASHBOARD['BASE_TEMPLATE'] must be a template name.", id="bullmq_dashboard.E010")
        ]
    try:
        blocks = template_blocks(name)
    except (TemplateDoesNotExist, TemplateSyntaxError) as exc:
        return [
            Error(
                f"BULLMQ_DASHBOARD['BASE_TEMPLATE'] = {name!r} cannot be loaded "
                f"({type(exc).__name__}: {exc}); every dashboard page would fail.",
                hint="Name a template your TEMPLATES settings find, or remove the key to use the app's own "
                "page frame.",
                id="bullmq_dashboard.E010",
            )
        ]
    except Unreadable:
        return []  # the page shows what is missing; nothing to read here without rendering
    missing = [block for block in REQUIRED_BLOCKS if block not in blocks]
    if not missing:
        return []
    return [
        Warning(
            f"BULLMQ_DASHBOARD['BASE_TEMPLATE'] = {name!r} has no block {', '.join(missing)}; the pages put "
            "their title, their styles and scripts, and their content in the blocks title, extra_head "
            "(inside <head>) and content.",
            hint="Add the missing {% block %} tags to the template, or add them in a small template that "
            "extends yours and name that one.",
            id="bullmq_dashboard.W011",
        )
    ]
