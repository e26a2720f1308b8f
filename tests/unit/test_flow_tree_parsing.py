"""The whole-flow tree without Redis: its links carry ids only in the query string, and the script's
reply becomes a tree however odd its keys."""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit

import pytest
from django.test import RequestFactory
from django.urls import resolve

from dashboard import links
from dashboard.views.base import job_id_param
from queues.flow_tree import parse_tree
from queues.models import QueueRef

QUEUE = QueueRef("default", "{t}:x", "email")


@pytest.mark.parametrize("job_id", ["1", "../../actions/drain/", "x?y#z&id=2", "ü 🚀", "a:b/c"])
def test_flow_links_carry_the_id_exactly_and_never_in_the_path(job_id: str) -> None:
    for url, view in [
        (links.flow_url(QUEUE, job_id), "job-flow"),
        (links.flow_api_url(QUEUE, job_id), "api-job-flow"),
    ]:
        sent = urljoin("http://testserver/queues/default/{t}:x:email/job/", url)
        assert urlsplit(sent).path == urlsplit(url).path
        match = resolve(unquote(urlsplit(url).path))
        assert match.url_name == view and match.kwargs["queue_key"] == "{t}:x:email"
        assert job_id_param(RequestFactory().get(url)) == job_id


def row(key: bytes, parent: int, relation: bytes, shape: bytes, length: int, **extra: object) -> list[object]:
    values = {"name": b"", "name_size": 0, "state": b"", "counts": (0, 0, 0, 0), "expanded": 0, "depth": 0}
    values.update(extra)
    return [
        key,
        parent,
        relation,
        shape,
        length,
        values["name"],
        values["name_size"],
        values["state"],
        *values["counts"],  # type: ignore[misc]
        values["expanded"],
        values["depth"],
        1 if extra.get("current") else 0,
    ]


def test_a_reply_becomes_a_tree_split_at_the_queue_key_in_bytes() -> None:
    reply = [
        [0, 1, b"missing", b"{t}:x:email:\xfa", 0, 0, 0],
        [
            row(
                b"{t}:x:email:r\xc3\xbc",
                0,
                b"root",
                b"job",
                11,
                name=b"ship",
                state=b"waiting-children",
                counts=(3, 1, 0, 1),
                expanded=1,
            ),
            row(b"bull:other:c\xff", 1, b"pending", b"job", 10, depth=1),
            row(b"{t}:x:email:me", 1, b"ignored", b"job", 11, depth=1, current=True, state=b"failed"),
        ],
    ]
    tree = parse_tree(reply)
    assert (tree.root.queue_key, tree.root.job_id, tree.root.name) == ("{t}:x:email", "rü", "ship")
    assert tree.root.counts == {"pending": 3, "processed": 1, "failed": 1, "ignored": 0}
    assert tree.root.more == 5 - 2
    odd, me = tree.root.children
    assert not odd.utf8 and odd.job_id == "c\ufffd" and odd.queue_key == "bull:other"
    assert tree.current is me and me.relation == "ignored" and me.state == "failed"
    assert tree.cycle and tree.dangling_shape == "missing" and not tree.dangling_utf8
    assert tree.in_flow and [node.key for node in tree.nodes()] == ["{t}:x:email:rü", odd.key, me.key]
