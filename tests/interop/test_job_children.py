"""A flow parent's job page says what it waits on, with each child's name and state, on a flow written and
processed by real Node BullMQ 6.7 (flow_state.mjs: see its header for the tree)."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
from django.test import AsyncClient

from dashboard import links
from dashboard.translation import state_label
from queues.models import QueueRef

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

TOP = QueueRef("default", "bull", "flow-top")
MID = QueueRef("default", "{shard-b}", "flow-mid")


def children_of(built: dict[str, Any], parent_key: str) -> dict[str, dict[str, Any]]:
    """Child job key -> Node's name and state, for the children Node says have this parent."""
    found = {}
    for where, job in built["jobs"].items():
        queue_key, job_id = where.split("|")
        if job["parentKey"] == parent_key:
            found[f"{queue_key}:{job_id}"] = job
    return found


def child_items(page: str) -> dict[str, str]:
    """Child key -> its <li> markup in the job page's children section."""
    section = page[page.index('id="children"') :]
    section = section[: section.index("</section>")]
    items = re.findall(r'<li data-child-key="([^"]+)">(.*?)</li>', section, re.DOTALL)
    return {html_lib.unescape(key): body for key, body in items}


@pytest.mark.parametrize(
    ("queue", "job_id", "summary"),
    [
        (MID, "mid-1", "Waits on 1 of 3 children: 1 {delayed}."),
        (TOP, "root-1", "Waits on 2 of 2 children: 1 {failed}, 1 {waiting-children}."),
    ],
)
async def test_a_parent_says_what_it_waits_on_with_each_childs_name_and_state(
    viewer: AsyncClient,
    node_flow: tuple[str, dict[str, Any]],
    queue: QueueRef,
    job_id: str,
    summary: str,
) -> None:
    response = await viewer.get(links.job_url(queue, job_id))
    assert response.status_code == 200
    page = response.content.decode()

    expected_summary = summary.format(
        **{state: state_label(state) for state in ("delayed", "failed", "waiting-children")}
    )
    shown = re.search(r"<p class=\"children-summary\" data-children-summary>(.*?)</p>", page, re.DOTALL)
    assert shown is not None
    assert html_lib.unescape(re.sub(r"<[^>]+>", "", shown.group(1))).strip() == expected_summary

    expected = children_of(node_flow[1], f"{queue.key}:{job_id}")
    items = child_items(page)
    assert set(items) == set(expected)
    for key, job in expected.items():
        assert f'<span class="child-name" data-child-name>{job["name"]}</span>' in items[key], key
        assert f'data-child-state="{job["state"]}"' in items[key], key


async def test_a_leaf_has_no_children_section(viewer: AsyncClient) -> None:
    page = (await viewer.get(links.job_url(TOP, "leaf-ok"))).content.decode()
    assert 'id="children"' not in page and "data-children-summary" not in page
