"""Drive the server with the real ``kinto-http`` Python client (PyPI, version
pinned in requirements.txt), the way applications use it.

Covers: server info; bucket / collection / group / record CRUD; the
personal ``default`` bucket; unversioned URLs (307 to ``/v1``); pagination
(``_limit``, ``pages``, ``get_paginated_records``, writes between pages);
``client.batch()`` (chunking by ``batch_max_requests``, failed
sub-requests); PATCH as attribute merge, JSON merge-patch and JSON-Patch
(including ``/permissions/...`` operations); sharing a record with another
user and with a group; ``_since`` sync with tombstones and
``get_records_timestamp``; safe writes (``If-None-Match: *`` / ``If-Match``)
and the 412 conflict; filters, sorting, ``_fields`` and JSON Schema as the
client sends them; and, only when the server advertises them, history,
accounts, attachments and the permissions endpoint.

Where Cairn is known to differ from the reference, the test says so with
``pytest.xfail("...")`` at that point (marked KNOWN DIFFERENCE), so the
rest of the suite still runs and the gap stays visible.

Run it against any server (see conftest.py)::

    pip install -r tests/clients/requirements.txt
    pytest -q tests/clients                          # starts target/debug/cairn
    KINTO_URL=http://127.0.0.1:8888/v1 pytest -q tests/clients
"""

import asyncio
import hashlib
from urllib.parse import urljoin

import pytest
import requests
from kinto_http import (
    AsyncClient,
    BucketNotFound,
    CollectionNotFound,
    KintoBatchException,
    KintoException,
)
from kinto_http.patch_type import BasicPatch, JSONPatch, MergePatch

from conftest import TIMEOUT, unique, user_id


def status_of(exc_info):
    return exc_info.value.response.status_code


def error_body(exc_info):
    return exc_info.value.response.json()


def ids(records):
    return sorted(r["id"] for r in records)


# ---------------------------------------------------------------------------
# Server info
# ---------------------------------------------------------------------------


def test_server_info(make_client):
    client = make_client()
    info = client.server_info()
    assert info["http_api_version"] == "1.23"
    assert info["project_name"]
    assert isinstance(info["settings"]["batch_max_requests"], int)
    assert info["settings"]["readonly"] is False
    assert isinstance(info["capabilities"], dict)
    assert "default_bucket" in info["capabilities"]
    user = info["user"]
    assert user["id"].startswith("basicauth:")
    assert user["id"] in user["principals"]
    assert "system.Authenticated" in user["principals"]
    assert "system.Everyone" in user["principals"]
    # The same credentials are the same user; other credentials another one.
    assert user_id(client) == user["id"]
    assert user_id(make_client()) != user["id"]
    # Anonymous: the same document, without a user.
    anon = make_client(anonymous=True).server_info()
    assert "user" not in anon
    assert anon["capabilities"] == info["capabilities"]


# ---------------------------------------------------------------------------
# CRUD
# ---------------------------------------------------------------------------


def test_bucket_crud(owner, make_client):
    name = unique("bkt")
    created = owner.create_bucket(id=name, data={"title": "first"})
    assert created["data"]["id"] == name
    assert created["data"]["title"] == "first"
    me = user_id(owner)
    assert me in created["permissions"]["write"]

    # create is "create only if absent" (If-None-Match: *).
    with pytest.raises(KintoException) as e:
        owner.create_bucket(id=name)
    assert status_of(e) == 412
    again = owner.create_bucket(id=name, if_not_exists=True)
    assert again["data"]["last_modified"] == created["data"]["last_modified"]

    got = owner.get_bucket(id=name)
    assert got["data"] == created["data"]

    replaced = owner.update_bucket(id=name, data={"colour": "red"})
    assert "title" not in replaced["data"]
    assert replaced["data"]["colour"] == "red"
    assert replaced["data"]["last_modified"] > created["data"]["last_modified"]

    patched = owner.patch_bucket(id=name, data={"size": 3})
    assert patched["data"]["colour"] == "red"
    assert patched["data"]["size"] == 3

    assert name in ids(owner.get_buckets())
    # Another user does not see it.
    stranger = make_client()
    assert name not in ids(stranger.get_buckets())
    with pytest.raises(BucketNotFound):
        stranger.get_bucket(id=name)

    deleted = owner.delete_bucket(id=name)
    assert deleted["deleted"] is True
    assert deleted["id"] == name
    # A deleted bucket is unreachable (403 in Kinto: its ACL is gone).
    with pytest.raises(BucketNotFound):
        owner.get_bucket(id=name)
    assert owner.delete_bucket(id=name, if_exists=True) is None
    assert name not in ids(owner.get_buckets())


def test_delete_buckets_only_own(owner, make_client):
    other = make_client()
    mine = [unique("mine"), unique("mine")]
    theirs = unique("theirs")
    for b in mine:
        owner.create_bucket(id=b)
    other.create_bucket(id=theirs)
    deleted = owner.delete_buckets()
    assert set(mine) <= {d["id"] for d in deleted}
    assert theirs not in {d["id"] for d in deleted}
    assert ids(owner.get_buckets()) == []
    assert other.get_bucket(id=theirs)["data"]["id"] == theirs
    other.delete_bucket(id=theirs)


def test_collection_crud(owner, bucket):
    c = owner.create_collection(id="articles", bucket=bucket, data={"kind": "blog"})
    assert c["data"]["id"] == "articles"
    assert c["data"]["kind"] == "blog"
    with pytest.raises(KintoException) as e:
        owner.create_collection(id="articles", bucket=bucket)
    assert status_of(e) == 412

    assert owner.get_collection(id="articles", bucket=bucket)["data"]["kind"] == "blog"
    updated = owner.update_collection(id="articles", bucket=bucket, data={"kind": "news"})
    assert updated["data"]["kind"] == "news"
    patched = owner.patch_collection(id="articles", bucket=bucket, data={"lang": "fr"})
    assert patched["data"] == {**updated["data"], "lang": "fr",
                               "last_modified": patched["data"]["last_modified"]}

    owner.create_collection(id="drafts", bucket=bucket)
    assert ids(owner.get_collections(bucket=bucket)) == ["articles", "drafts"]

    tomb = owner.delete_collection(id="drafts", bucket=bucket)
    assert tomb["deleted"] is True
    with pytest.raises(CollectionNotFound):
        owner.get_collection(id="drafts", bucket=bucket)
    assert ids(owner.get_collections(bucket=bucket)) == ["articles"]

    gone = owner.delete_collections(bucket=bucket)
    assert ids(gone) == ["articles"]
    assert owner.get_collections(bucket=bucket) == []


def test_group_crud(owner, bucket, make_client):
    bob, carol = make_client(), make_client()
    bob_id, carol_id = user_id(bob), user_id(carol)

    g = owner.create_group(id="editors", bucket=bucket, data={"members": [bob_id]})
    assert g["data"]["members"] == [bob_id]
    with pytest.raises(KintoException) as e:
        owner.create_group(id="editors", bucket=bucket, data={"members": []})
    assert status_of(e) == 412

    assert owner.get_group(id="editors", bucket=bucket)["data"]["members"] == [bob_id]
    updated = owner.update_group(id="editors", bucket=bucket,
                                 data={"members": [carol_id], "title": "Eds"})
    assert updated["data"]["members"] == [carol_id]
    patched = owner.patch_group(id="editors", bucket=bucket, data={"members": [bob_id, carol_id]})
    assert patched["data"]["members"] == [bob_id, carol_id]
    assert patched["data"]["title"] == "Eds"

    owner.create_group(id="readers", bucket=bucket, data={"members": []})
    assert ids(owner.get_groups(bucket=bucket)) == ["editors", "readers"]
    assert owner.delete_group(id="readers", bucket=bucket)["deleted"] is True
    with pytest.raises(KintoException) as e:
        owner.get_group(id="readers", bucket=bucket)
    assert status_of(e) == 404
    assert ids(owner.delete_groups(bucket=bucket)) == ["editors"]
    assert owner.get_groups(bucket=bucket) == []


def test_record_crud(coll):
    r = coll.create_record(data={"title": "one", "done": False})
    rid = r["data"]["id"]
    assert len(rid) == 36  # a UUID made by the client
    assert r["data"]["title"] == "one"
    assert isinstance(r["data"]["last_modified"], int)

    named = coll.create_record(id="r-2", data={"title": "two"})
    assert named["data"]["id"] == "r-2"
    with pytest.raises(KintoException) as e:
        coll.create_record(id="r-2", data={"title": "dup"})
    assert status_of(e) == 412
    existing = coll.create_record(id="r-2", data={"title": "dup"}, if_not_exists=True)
    assert existing["data"]["title"] == "two"

    got = coll.get_record(id=rid)
    assert got["data"] == r["data"]

    # update = PUT: fields not sent disappear.
    replaced = coll.update_record(id=rid, data={"title": "uno"})
    assert replaced["data"] == {"id": rid, "title": "uno",
                                "last_modified": replaced["data"]["last_modified"]}
    # patch (attribute merge): other fields stay.
    patched = coll.patch_record(id=rid, data={"done": True})
    assert patched["data"]["title"] == "uno"
    assert patched["data"]["done"] is True
    assert patched["data"]["last_modified"] > replaced["data"]["last_modified"]

    assert ids(coll.get_records()) == sorted([rid, "r-2"])
    assert ids(coll.get_records(title="two")) == ["r-2"]
    assert ids(coll.get_records(in_title=["uno", "two"])) == sorted([rid, "r-2"])

    tomb = coll.delete_record(id=rid)
    assert tomb["deleted"] is True
    assert tomb["id"] == rid
    with pytest.raises(KintoException) as e:
        coll.get_record(id=rid)
    assert status_of(e) == 404
    assert error_body(e)["errno"] == 110
    assert coll.delete_record(id=rid, if_exists=True) is None

    gone = coll.delete_records()
    assert ids(gone) == ["r-2"]
    assert coll.get_records() == []


def test_record_in_missing_collection(owner, bucket):
    c = owner.clone(bucket=bucket, collection="nope")
    with pytest.raises(KintoException) as e:
        c.get_records()
    assert status_of(e) == 404
    assert error_body(e)["details"] == {"id": "nope", "resource_name": "collection"}


def test_default_bucket(make_client):
    client = make_client(bucket="default", collection=unique("tasks"))
    # The collection is created implicitly on the first write.
    r = client.create_record(data={"description": "Write a tutorial", "status": "todo"})
    assert r["data"]["status"] == "todo"
    assert client.get_records() == [r["data"]]
    personal = client.get_bucket(id="default")
    assert personal["data"]["id"] not in ("", "default")
    # It is the same bucket under its real id.
    real = client.clone(bucket=personal["data"]["id"])
    assert real.get_record(id=r["data"]["id"])["data"] == r["data"]
    # Another user's default bucket is another bucket.
    other = make_client(bucket="default", collection=client.collection_name)
    assert other.get_records() == []


def test_unversioned_server_url(server_url, make_client):
    """A client configured with the server root (no ``/v1``): the server
    redirects with 307, which keeps method, body and credentials."""
    root = server_url[: -len("/v1")] if server_url.endswith("/v1") else server_url
    user = unique("user")
    client = make_client(user).clone(server_url=root)
    name = unique("bkt")
    client.create_bucket(id=name)
    client.create_collection(id="c", bucket=name)
    r = client.create_record(bucket=name, collection="c", data={"x": 1})
    assert client.get_records(bucket=name, collection="c") == [r["data"]]
    # Same identity as with the versioned URL.
    assert make_client(user).get_bucket(id=name)["data"]["id"] == name


def test_async_client(server_url):
    async def scenario():
        client = AsyncClient(server_url=server_url, auth=(unique("user"), "pw"), timeout=TIMEOUT)
        name = unique("bkt")
        await client.create_bucket(id=name)
        await client.create_collection(id="c", bucket=name)
        created = await asyncio.gather(*[
            client.create_record(bucket=name, collection="c", data={"n": i}) for i in range(5)
        ])
        records = await client.get_records(bucket=name, collection="c", _sort="n")
        await client.delete_bucket(id=name)
        return created, records

    created, records = asyncio.run(scenario())
    assert [r["n"] for r in records] == [0, 1, 2, 3, 4]
    assert ids(records) == ids([c["data"] for c in created])


def test_filters_sorting_fields(coll):
    """Query parameters as kinto-http sends them (lists joined for ``in_`` /
    ``exclude_``, other non-strings JSON-encoded)."""
    names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    with coll.batch() as b:
        for i, name in enumerate(names):
            data = {"n": i, "name": name, "even": i % 2 == 0, "o": {"k": i % 3},
                    "tags": ["t%d" % (i % 3), "all"]}
            if i < 2:
                data["extra"] = "yes"
            b.create_record(id=name, data=data)

    def q(**params):
        return [r["id"] for r in coll.get_records(_sort="n", **params)]

    assert q(n=2) == ["charlie"]
    assert q(in_n=["1", "3", "5"]) == ["bravo", "delta", "foxtrot"]
    assert q(exclude_n=["0", "1", "2"]) == ["delta", "echo", "foxtrot"]
    assert q(not_n=0) == names[1:]
    assert q(lt_n=2) == ["alpha", "bravo"]
    assert q(max_n=2) == ["alpha", "bravo", "charlie"]
    assert q(gt_n=4) == ["foxtrot"]
    assert q(min_n=4) == ["echo", "foxtrot"]
    assert q(even=True) == ["alpha", "charlie", "echo"]
    assert q(**{"o.k": 1}) == ["bravo", "echo"]
    assert q(like_name="*ha*") == ["alpha", "charlie"]
    assert q(has_extra=True) == ["alpha", "bravo"]
    assert q(has_extra=False) == names[2:]
    assert q(contains_tags=["t0", "all"]) == ["alpha", "delta"]
    assert q(contains_any_tags=["t2", "nope"]) == ["charlie", "foxtrot"]
    assert q(min_n=1, max_n=4, even=False) == ["bravo", "delta"]

    by_parity = [r["id"] for r in coll.get_records(_sort="-even,-n")]
    assert by_parity == ["echo", "charlie", "alpha", "foxtrot", "delta", "bravo"]
    assert [r["id"] for r in coll.get_records(_sort="-o.k,name")] == \
        ["charlie", "foxtrot", "bravo", "echo", "alpha", "delta"]

    light = coll.get_records(_sort="n", _fields="name,o.k", _limit=2)
    assert light == [
        {"id": "alpha", "last_modified": light[0]["last_modified"], "name": "alpha", "o": {"k": 0}},
        {"id": "bravo", "last_modified": light[1]["last_modified"], "name": "bravo", "o": {"k": 1}},
    ]


def test_object_fields(coll):
    coll.create_record(id="delta", data={"n": 3, "name": "delta", "o": {"k": 0, "j": 1}})
    one = coll.get_record(id="delta", _fields="n")
    if set(one["data"]) > {"id", "last_modified", "n"} and "permissions" in one:
        # KNOWN DIFFERENCE (Cairn): _fields is ignored on a single object GET
        # (spec 12: it applies to object GET too, and drops `permissions`).
        pytest.xfail("GET .../records/{id}?_fields=n returns every field and the ACL")
    assert one == {"data": {"id": "delta", "last_modified": one["data"]["last_modified"], "n": 3}}
    nested = coll.get_record(id="delta", _fields="o.k")
    assert nested == {"data": {"id": "delta", "last_modified": one["data"]["last_modified"],
                               "o": {"k": 0}}}


def test_collection_schema(owner, bucket):
    """JSON Schema validation of records (the reference config enables it)."""
    schema = {"type": "object", "required": ["title"],
              "properties": {"title": {"type": "string"}, "n": {"type": "integer"}}}
    coll_ = owner.create_collection(id="valid", bucket=bucket, data={"schema": schema})
    c = owner.clone(bucket=bucket, collection="valid")
    with pytest.raises(KintoException) as e:
        c.create_record(data={"title": "x", "n": "not a number"})
    assert status_of(e) == 400
    body = error_body(e)
    assert body["errno"] == 107
    assert body["details"][0]["location"] == "body"
    assert body["details"][0]["name"] == "n"
    with pytest.raises(KintoException) as e:
        c.create_record(data={"n": 1})
    assert status_of(e) == 400
    ok = c.create_record(data={"title": "fine", "n": 1})
    assert ok["data"]["schema"] == coll_["data"]["last_modified"]
    with pytest.raises(KintoException) as e:
        c.patch_record(id=ok["data"]["id"], data={"title": 42})
    assert status_of(e) == 400
    assert c.get_record(id=ok["data"]["id"])["data"]["title"] == "fine"


# ---------------------------------------------------------------------------
# Pagination
# ---------------------------------------------------------------------------


def _fill(coll, count):
    with coll.batch() as b:
        for i in range(count):
            b.create_record(id=f"r{i:03d}", data={"n": i, "even": i % 2 == 0})
    return [f"r{i:03d}" for i in range(count)]


def test_pagination(coll):
    all_ids = _fill(coll, 57)

    # _limit alone: one page.
    page = coll.get_records(_limit=10, _sort="n")
    assert [r["n"] for r in page] == list(range(10))
    # pages=N: N pages of _limit.
    three = coll.get_records(_limit=10, pages=3, _sort="n")
    assert [r["n"] for r in three] == list(range(30))
    # every page.
    everything = coll.get_records(_limit=10, pages=float("inf"), _sort="-n")
    assert [r["n"] for r in everything] == list(range(56, -1, -1))
    # no _limit: the client follows Next-Page until the end.
    assert ids(coll.get_records()) == all_ids

    # The generator exposes the pages themselves.
    pages = list(coll.get_paginated_records(_limit=10, _sort="n"))
    assert [len(p["data"]) for p in pages] == [10, 10, 10, 10, 10, 7]
    assert [r["n"] for p in pages for r in p["data"]] == list(range(57))

    # Filters and _fields are kept across pages.
    evens = coll.get_records(_limit=4, pages=float("inf"), even=True, _sort="n", _fields="n")
    assert [r["n"] for r in evens] == list(range(0, 57, 2))
    assert all(set(r) == {"id", "last_modified", "n"} for r in evens)
    big = coll.get_records(_limit=5, pages=float("inf"), min_n=40, _sort="-n")
    assert [r["n"] for r in big] == list(range(56, 39, -1))

    # Exactly a multiple of the page size: no empty last page.
    pages = list(coll.get_paginated_records(_limit=19, _sort="n"))
    assert [len(p["data"]) for p in pages] == [19, 19, 19]


def test_pagination_with_writes_between_pages(coll):
    _fill(coll, 30)
    pages = coll.get_paginated_records(_limit=10, _sort="n")
    first = next(pages)
    assert [r["n"] for r in first["data"]] == list(range(10))
    # Meanwhile: one already-seen record deleted, one not-yet-seen deleted,
    # a seen one modified, and a new one added at the end of the sort order.
    coll.delete_record(id="r003")
    coll.delete_record(id="r015")
    coll.patch_record(id="r004", data={"touched": True})
    coll.create_record(id="r100", data={"n": 100})
    rest = [r["n"] for p in pages for r in p["data"]]
    assert rest == [n for n in range(10, 30) if n != 15] + [100]


# ---------------------------------------------------------------------------
# Batch
# ---------------------------------------------------------------------------


def test_batch(coll, bucket):
    with coll.batch() as b:
        b.create_record(id="a", data={"n": 1})
        b.create_record(id="b", data={"n": 2})
        b.patch_record(id="a", data={"m": 10})
        # (get_record cannot be batched by this client: BatchSession takes no params)
        b.update_record(id="b", data={"n": 3})
        b.create_collection(id="other", bucket=bucket)
        b.create_record(id="z", collection="other", data={"n": 26})
        b.delete_record(id="b")
    results = b.results()
    assert len(results) == 7
    assert results[0]["data"]["id"] == "a"
    assert results[2]["data"] == {**results[2]["data"], "n": 1, "m": 10}
    assert results[3]["data"] == {**results[3]["data"], "id": "b", "n": 3}
    assert results[4]["data"]["id"] == "other"
    assert results[6]["data"]["deleted"] is True
    assert ids(coll.get_records()) == ["a"]
    assert ids(coll.get_records(collection="other")) == ["z"]


def test_batch_larger_than_batch_max_requests(coll):
    limit = coll.server_info()["settings"]["batch_max_requests"]
    count = limit + 5
    with coll.batch() as b:
        for i in range(count):
            b.create_record(data={"n": i})
    results = b.results()
    assert len(results) == count
    assert sorted(r["data"]["n"] for r in results) == list(range(count))
    assert len(coll.get_records()) == count


def test_batch_with_a_failing_request(coll, make_client):
    coll.create_record(id="taken", data={"v": 0})
    with pytest.raises(KintoBatchException) as e:
        with coll.batch() as b:
            b.create_record(id="first", data={"v": 1})
            b.create_record(id="taken", data={"v": 2})   # If-None-Match: * -> 412
            b.create_record(id="last", data={"v": 3})
    assert [x.response.status_code for x in e.value.exceptions] == [412]
    # A 412 does not abort the batch: the others were applied.
    assert ids(coll.get_records()) == ["first", "last", "taken"]
    assert coll.get_record(id="taken")["data"]["v"] == 0

    # ignore_batch_4xx: no exception, the error is in the results.
    lenient = make_client(coll.session.auth[0], ignore_batch_4xx=True,
                          bucket=coll.bucket_name, collection=coll.collection_name)
    with lenient.batch() as b:
        b.create_record(id="taken", data={"v": 9})
        b.update_record(id="taken", data={"v": 10})
    first, second = b.results()
    assert first["errno"] == 114
    assert first["details"]["existing"]["v"] == 0
    assert second["data"]["v"] == 10

    # A sub-request another user may not make: 403 in its own response.
    mallory = make_client(bucket=coll.bucket_name, collection=coll.collection_name)
    with pytest.raises(KintoBatchException) as e:
        with mallory.batch() as b:
            b.create_record(id="evil", data={})
    assert [x.response.status_code for x in e.value.exceptions] == [403]
    assert "evil" not in ids(coll.get_records())


# ---------------------------------------------------------------------------
# PATCH flavours
# ---------------------------------------------------------------------------


def test_patch_attribute_merge(coll):
    coll.create_record(id="r", data={"a": 1, "o": {"x": 1, "y": 2}, "k": "v"})
    out = coll.patch_record(id="r", changes=BasicPatch(data={"o": {"z": 3}, "k": None}))
    # Top-level merge: nested objects replaced, null stored as null.
    assert out["data"]["a"] == 1
    assert out["data"]["o"] == {"z": 3}
    assert out["data"]["k"] is None


def test_patch_merge_patch(coll, make_client):
    coll.create_record(id="r", data={"a": 1, "o": {"x": 1, "y": 2}, "l": [1, 2]})
    out = coll.patch_record(
        id="r", changes=MergePatch(data={"a": None, "o": {"x": None, "z": 3}, "l": [3]})
    )
    data = dict(out["data"])
    data.pop("last_modified")
    assert data == {"id": "r", "o": {"y": 2, "z": 3}, "l": [3]}

    bob = make_client()
    bob_id = user_id(bob)
    out = coll.patch_record(id="r", changes=MergePatch(permissions={"read": [bob_id]}))
    assert out["permissions"]["read"] == [bob_id]
    assert bob.get_record(id="r", bucket=coll.bucket_name,
                          collection=coll.collection_name)["data"]["o"] == {"y": 2, "z": 3}
    out = coll.patch_record(id="r", changes=MergePatch(permissions={"read": None}))
    assert "read" not in out["permissions"] or out["permissions"]["read"] == []
    with pytest.raises(KintoException) as e:
        bob.get_record(id="r", bucket=coll.bucket_name, collection=coll.collection_name)
    assert status_of(e) == 403


def test_patch_json_patch(coll, make_client):
    coll.create_record(id="r", data={"a": 1, "l": [1], "o": {"x": 1}})
    bob = make_client()
    bob_id = user_id(bob)
    out = coll.patch_record(id="r", changes=JSONPatch([
        {"op": "test", "path": "/data/a", "value": 1},
        {"op": "replace", "path": "/data/a", "value": 2},
        {"op": "add", "path": "/data/l/-", "value": 2},
        {"op": "remove", "path": "/data/o/x"},
        {"op": "add", "path": "/data/new", "value": "v"},
        {"op": "copy", "from": "/data/a", "path": "/data/b"},
        {"op": "move", "from": "/data/new", "path": "/data/moved"},
        {"op": "add", "path": f"/permissions/read/{bob_id}"},
    ]))
    data = dict(out["data"])
    data.pop("last_modified")
    assert data == {"id": "r", "a": 2, "b": 2, "l": [1, 2], "o": {}, "moved": "v"}
    assert out["permissions"]["read"] == [bob_id]
    assert bob.get_record(id="r", bucket=coll.bucket_name,
                          collection=coll.collection_name)["data"]["moved"] == "v"

    out = coll.patch_record(id="r", changes=JSONPatch([
        {"op": "remove", "path": f"/permissions/read/{bob_id}"},
    ]))
    assert bob_id not in out["permissions"].get("read", [])
    with pytest.raises(KintoException) as e:
        bob.get_record(id="r", bucket=coll.bucket_name, collection=coll.collection_name)
    assert status_of(e) == 403

    # A failing test operation changes nothing.
    before = coll.get_record(id="r")
    with pytest.raises(KintoException) as e:
        coll.patch_record(id="r", changes=JSONPatch([
            {"op": "replace", "path": "/data/a", "value": 99},
            {"op": "test", "path": "/data/a", "value": "not this"},
        ]))
    assert status_of(e) == 400
    assert error_body(e)["errno"] == 107
    assert coll.get_record(id="r") == before
    # Nor does a bad pointer.
    with pytest.raises(KintoException) as e:
        coll.patch_record(id="r", changes=JSONPatch([
            {"op": "remove", "path": "/data/missing/deep"},
        ]))
    assert status_of(e) == 400


def test_patch_collection_and_bucket_permissions(owner, bucket, make_client):
    bob = make_client()
    bob_id = user_id(bob)
    owner.create_collection(id="c", bucket=bucket)
    owner.create_record(bucket=bucket, collection="c", id="r", data={"n": 1})
    b = bob.clone(bucket=bucket, collection="c")
    with pytest.raises(KintoException) as e:
        b.get_records()
    assert status_of(e) == 403

    out = owner.patch_collection(id="c", bucket=bucket, changes=JSONPatch([
        {"op": "add", "path": f"/permissions/read/{bob_id}"},
        {"op": "add", "path": "/data/title", "value": "shared"},
    ]))
    assert out["permissions"]["read"] == [bob_id]
    assert out["data"]["title"] == "shared"
    assert ids(b.get_records()) == ["r"]
    # A collection reader may not read the bucket object itself.
    with pytest.raises(BucketNotFound):
        bob.get_bucket(id=bucket)

    owner.patch_bucket(id=bucket, permissions={"read": [bob_id]})
    seen = bob.get_bucket(id=bucket)
    assert seen["data"]["id"] == bucket
    assert seen["permissions"] == {}     # readers do not see the ACL
    assert ids(bob.get_collections(bucket=bucket)) == ["c"]


# ---------------------------------------------------------------------------
# Sharing
# ---------------------------------------------------------------------------


def test_share_record_with_user(coll, make_client):
    alice_id = user_id(coll)
    bob, carol = make_client(), make_client()
    bob_id = user_id(bob)
    shared = coll.create_record(id="shared", data={"title": "for bob"})
    coll.create_record(id="private", data={"title": "mine"})
    b = bob.clone(bucket=coll.bucket_name, collection=coll.collection_name)
    c = carol.clone(bucket=coll.bucket_name, collection=coll.collection_name)

    with pytest.raises(KintoException) as e:
        b.get_record(id="shared")
    assert status_of(e) == 403
    assert error_body(e)["errno"] == 121

    out = coll.patch_record(id="shared", permissions={"read": [bob_id]})
    assert out["permissions"]["read"] == [bob_id]
    assert alice_id in out["permissions"]["write"]

    seen = b.get_record(id="shared")
    assert seen["data"] == {**shared["data"], "last_modified": out["data"]["last_modified"]}
    assert seen["permissions"] == {}          # readers do not see the ACL
    # Listing shows only what bob may read.
    assert ids(b.get_records()) == ["shared"]
    with pytest.raises(KintoException) as e:
        b.get_record(id="private")
    assert status_of(e) == 403
    with pytest.raises(KintoException) as e:
        b.patch_record(id="shared", data={"title": "hacked"})
    assert status_of(e) == 403
    with pytest.raises(KintoException) as e:
        c.get_records()
    assert status_of(e) == 403

    # Write permission: bob may edit, and becomes a listed writer.
    coll.patch_record(id="shared", permissions={"write": [bob_id]})
    edited = b.patch_record(id="shared", data={"title": "edited by bob"})
    assert edited["data"]["title"] == "edited by bob"
    assert set(edited["permissions"]["write"]) == {alice_id, bob_id}
    assert coll.get_record(id="shared")["data"]["title"] == "edited by bob"

    # Public read: even anonymous clients.
    coll.patch_record(id="private", permissions={"read": ["system.Everyone"]})
    anon = make_client(anonymous=True, bucket=coll.bucket_name, collection=coll.collection_name)
    assert anon.get_record(id="private")["data"]["title"] == "mine"
    assert ids(c.get_records()) == ["private"]


def test_share_collection_with_group(owner, bucket, make_client):
    bob, carol = make_client(), make_client()
    bob_id, carol_id = user_id(bob), user_id(carol)
    group_uri = f"/buckets/{bucket}/groups/friends"
    owner.create_collection(id="c", bucket=bucket,
                            permissions={"read": [group_uri]})
    cl = owner.clone(bucket=bucket, collection="c")
    cl.create_record(id="r1", data={"n": 1})
    cl.create_record(id="r2", data={"n": 2})

    b = bob.clone(bucket=bucket, collection="c")
    c = carol.clone(bucket=bucket, collection="c")
    with pytest.raises(KintoException) as e:
        b.get_records()
    assert status_of(e) == 403

    owner.create_group(id="friends", bucket=bucket, data={"members": [bob_id]})
    assert group_uri in b.clone().server_info()["user"]["principals"]
    assert ids(b.get_records()) == ["r1", "r2"]
    assert b.get_collection(id="c")["data"]["id"] == "c"
    with pytest.raises(KintoException) as e:
        b.update_record(id="r1", data={"n": 100})
    assert status_of(e) == 403
    with pytest.raises(KintoException) as e:
        c.get_records()
    assert status_of(e) == 403

    # Membership changes take effect at once.
    owner.patch_group(id="friends", bucket=bucket, data={"members": [carol_id]})
    with pytest.raises(KintoException) as e:
        b.get_records()
    assert status_of(e) == 403
    assert ids(c.get_records()) == ["r1", "r2"]

    # A group can also be given write; members then create records.
    owner.create_group(id="writers", bucket=bucket, data={"members": [bob_id]})
    owner.patch_collection(id="c", bucket=bucket,
                           permissions={"record:create": [f"/buckets/{bucket}/groups/writers"]})
    mine = b.create_record(data={"by": "bob"})
    assert bob_id in mine["permissions"]["write"]
    # bob sees only his own record (record:create gives no read).
    assert ids(b.get_records()) == [mine["data"]["id"]]

    owner.delete_group(id="friends", bucket=bucket)
    with pytest.raises(KintoException) as e:
        c.get_records()
    assert status_of(e) == 403


# ---------------------------------------------------------------------------
# Sync: _since, tombstones, timestamps
# ---------------------------------------------------------------------------


def test_since_sync(coll, make_client):
    for i in range(5):
        coll.create_record(id=f"r{i}", data={"n": i})
    initial = coll.get_records()
    assert len(initial) == 5
    ts0 = coll.get_records_timestamp()
    assert ts0 == str(max(r["last_modified"] for r in initial))
    # A fresh client gets the same value with HEAD.
    fresh = coll.clone()
    assert fresh.get_records_timestamp() == ts0

    assert coll.get_records(_since=ts0) == []
    # If-None-Match on the current ETag: 304, the client returns nothing.
    assert coll.get_records(_since=ts0, if_none_match=ts0) == []

    coll.patch_record(id="r1", data={"n": 10})
    coll.delete_record(id="r2")
    coll.create_record(id="r5", data={"n": 5})
    changes = coll.get_records(_since=ts0)
    assert ids(changes) == ["r1", "r2", "r5"]
    by_id = {r["id"]: r for r in changes}
    assert by_id["r1"]["n"] == 10
    tomb = by_id["r2"]
    assert tomb["deleted"] is True
    assert set(tomb) == {"id", "last_modified", "deleted"}
    assert all(r["last_modified"] > int(ts0) for r in changes)

    ts1 = coll.get_records_timestamp()   # updated by the listing above
    assert int(ts1) == max(r["last_modified"] for r in changes)
    assert coll.clone().get_records_timestamp() == ts1
    assert coll.get_records(_since=ts1) == []
    # Quoted ETag form is accepted too.
    assert coll.get_records(_since=f'"{ts0}"') == changes

    # Without a timestamp filter, no tombstone.
    assert ids(coll.get_records()) == ["r0", "r1", "r3", "r4", "r5"]
    # _before: the state as of ts0 minus what changed since.
    # (r4 has last_modified == ts0; r1, r2 changed after it.)
    assert ids(coll.get_records(_before=ts0)) == ["r0", "r3"]

    # Bulk delete: every record becomes a tombstone.
    coll.delete_records()
    after = coll.get_records(_since=ts1)
    assert ids(after) == ["r0", "r1", "r3", "r4", "r5"]
    assert all(r["deleted"] for r in after)
    ts2 = coll.get_records_timestamp()
    assert int(ts2) > int(ts1)
    assert coll.get_records() == []

    # A collection reader sees the tombstones too (paginated).
    reader = make_client()
    coll.patch_collection(id=coll.collection_name, permissions={"read": [user_id(reader)]})
    r = reader.clone(bucket=coll.bucket_name, collection=coll.collection_name)
    synced = r.get_records(_since=ts0, _limit=2, pages=float("inf"))
    assert ids(synced) == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert all(x["deleted"] for x in synced)


def test_since_sync_two_clients(owner, bucket, make_client):
    """Two devices of one user keep a local copy in sync with _since."""
    owner.create_collection(id="notes", bucket=bucket)
    device_a = owner.clone(bucket=bucket, collection="notes")
    device_b = owner.clone(bucket=bucket, collection="notes")
    local = {}
    since = None

    def sync():
        nonlocal since
        kwargs = {"_since": since} if since else {}
        for r in device_b.get_records(**kwargs):
            if r.get("deleted"):
                local.pop(r["id"], None)
            else:
                local[r["id"]] = r
        since = device_b.get_records_timestamp()

    sync()
    assert local == {}
    device_a.create_record(id="n1", data={"text": "hello"})
    device_a.create_record(id="n2", data={"text": "world"})
    sync()
    assert sorted(local) == ["n1", "n2"]
    device_a.update_record(id="n1", data={"text": "hello!"})
    device_a.delete_record(id="n2")
    sync()
    assert sorted(local) == ["n1"]
    assert local["n1"]["text"] == "hello!"
    sync()
    assert sorted(local) == ["n1"]
    assert {r["id"]: r for r in device_a.get_records()} == local


# ---------------------------------------------------------------------------
# Safe writes: If-Match / If-None-Match and the conflict
# ---------------------------------------------------------------------------


def test_safe_updates(coll):
    original = coll.create_record(id="doc", data={"v": 1})["data"]
    current = coll.update_record(data={**original, "v": 2})["data"]   # If-Match: original
    assert current["v"] == 2

    # The stale copy now conflicts.
    with pytest.raises(KintoException) as e:
        coll.update_record(data={**original, "v": 3})
    assert status_of(e) == 412
    body = error_body(e)
    assert body["errno"] == 114
    assert body["message"] == "Resource was modified meanwhile"
    assert body["details"]["existing"]["v"] == 2
    assert body["details"]["existing"]["last_modified"] == current["last_modified"]
    assert e.value.response.headers["ETag"] == f'"{current["last_modified"]}"'

    with pytest.raises(KintoException) as e:
        coll.patch_record(original=original, changes=BasicPatch(data={"v": 4}))
    assert status_of(e) == 412
    with pytest.raises(KintoException) as e:
        coll.patch_record(id="doc", changes=MergePatch(data={"v": 4}),
                          if_match=original["last_modified"])
    assert status_of(e) == 412
    with pytest.raises(KintoException) as e:
        coll.delete_record(id="doc", if_match=original["last_modified"])
    assert status_of(e) == 412
    with pytest.raises(KintoException) as e:
        coll.delete_records(if_match=original["last_modified"])
    assert status_of(e) == 412
    assert coll.get_record(id="doc")["data"] == current

    # With the current version it goes through.
    patched = coll.patch_record(original=current, changes=BasicPatch(data={"v": 5}))["data"]
    assert patched["v"] == 5
    # safe=False: last writer wins, whatever the copy says.
    forced = coll.update_record(data={**original, "v": 6}, safe=False)["data"]
    assert forced["v"] == 6
    assert coll.delete_record(id="doc", if_match=forced["last_modified"])["deleted"] is True


def test_safe_bucket_and_collection_writes(owner, bucket):
    b = owner.get_bucket(id=bucket)["data"]
    owner.patch_bucket(id=bucket, data={"x": 1})
    with pytest.raises(KintoException) as e:
        owner.update_bucket(id=bucket, data={"x": 2}, if_match=b["last_modified"])
    assert status_of(e) == 412
    with pytest.raises(KintoException) as e:
        owner.delete_bucket(id=bucket, if_match=b["last_modified"])
    assert status_of(e) == 412

    c = owner.create_collection(id="c", bucket=bucket)["data"]
    owner.patch_collection(id="c", bucket=bucket, data={"y": 1})
    with pytest.raises(KintoException) as e:
        owner.patch_collection(original=c, bucket=bucket, data={"y": 2})
    assert status_of(e) == 412
    g = owner.create_group(id="g", bucket=bucket, data={"members": []})["data"]
    owner.update_group(id="g", bucket=bucket, data={"members": ["x"]})
    with pytest.raises(KintoException) as e:
        owner.update_group(data={**g, "members": ["y"]}, bucket=bucket)
    assert status_of(e) == 412
    assert owner.get_group(id="g", bucket=bucket)["data"]["members"] == ["x"]


# ---------------------------------------------------------------------------
# Optional capabilities: history, accounts, permissions endpoint
# ---------------------------------------------------------------------------


def needs(capabilities, name):
    if name not in capabilities:
        pytest.skip(f"the server does not advertise the {name!r} capability")


def test_history(capabilities, owner, bucket, make_client):
    needs(capabilities, "history")
    alice_id = user_id(owner)
    owner.create_collection(id="c", bucket=bucket)
    c = owner.clone(bucket=bucket, collection="c")
    c.create_record(id="r1", data={"n": 1})
    c.patch_record(id="r1", data={"n": 2})
    c.delete_record(id="r1")

    entries = owner.get_history(bucket=bucket)
    # Newest first: delete, update, create of r1, then the collection, the bucket.
    summary = [(e["action"], e["resource_name"]) for e in entries]
    assert summary == [("delete", "record"), ("update", "record"), ("create", "record"),
                       ("create", "collection"), ("create", "bucket")]
    stamps = [e["last_modified"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
    upd = entries[1]
    assert upd["uri"] == f"/buckets/{bucket}/collections/c/records/r1"
    assert upd["collection_id"] == "c"
    assert upd["record_id"] == "r1"
    assert upd["user_id"] == alice_id
    assert upd["target"]["data"]["n"] == 2
    assert entries[0]["target"]["data"]["deleted"] is True

    records_only = owner.get_history(bucket=bucket, resource_name="record", _sort="last_modified")
    assert [e["action"] for e in records_only] == ["create", "update", "delete"]
    paged = owner.get_history(bucket=bucket, _limit=2, pages=float("inf"))
    assert [e["id"] for e in paged] == [e["id"] for e in entries]
    since = owner.get_history(bucket=bucket, _since=entries[2]["last_modified"])
    assert [e["action"] for e in since] == ["delete", "update"]

    # Only those who may read the bucket see its history.
    with pytest.raises(KintoException) as e:
        make_client().get_history(bucket=bucket)
    assert status_of(e) == 403



def test_history_purge(capabilities, owner, bucket, make_client):
    needs(capabilities, "history")
    owner.create_collection(id="c", bucket=bucket)
    owner.create_record(bucket=bucket, collection="c", id="r", data={})
    assert len(owner.get_history(bucket=bucket)) == 3
    # Only bucket writers may purge.
    reader = make_client()
    owner.patch_bucket(id=bucket, permissions={"read": [user_id(reader)]})
    with pytest.raises(KintoException) as e:
        reader.purge_history(bucket=bucket)
    assert status_of(e) in (403, 405)
    try:
        purged = owner.purge_history(bucket=bucket)
    except KintoException as e:
        if e.response is not None and e.response.status_code == 405:
            # KNOWN DIFFERENCE, deliberate (docs/kinto-differences.md): Cairn
            # refuses the purge (its history is the append-only event log);
            # Kinto (spec api-around 3.1) deletes the entries and returns
            # their tombstones.
            pytest.xfail("DELETE /buckets/{bid}/history answers 405 (Kinto purges)")
        raise
    assert len(purged) == 4   # the three entries above and the patch_bucket one
    assert all(p["deleted"] for p in purged)
    assert owner.get_history(bucket=bucket) == []


def test_accounts(capabilities, server_url, make_client):
    needs(capabilities, "accounts")
    name = unique("acct")
    anon = make_client(anonymous=True)
    created, _ = anon.session.request("put", f"/accounts/{name}", data={"password": "s3cret"})
    assert created["data"]["id"] == name
    assert created["data"]["password"] != "s3cret"
    assert created["permissions"]["write"] == [f"account:{name}"]

    me = make_client(name, "s3cret")
    info = me.server_info()
    assert info["user"]["id"] == f"account:{name}"

    # An account principal in an ACL.
    owner = make_client()
    b = unique("bkt")
    owner.create_bucket(id=b, permissions={"read": [f"account:{name}"]})
    assert me.get_bucket(id=b)["data"]["id"] == b
    # A wrong password falls through to Basic Auth: another user, no access.
    wrong = make_client(name, "not-the-password")
    assert user_id(wrong).startswith("basicauth:")
    with pytest.raises(BucketNotFound):
        wrong.get_bucket(id=b)

    # Change the password: the old one stops working at once.
    me.session.request("patch", f"/accounts/{name}", data={"password": "n3w"})
    assert user_id(make_client(name, "n3w")) == f"account:{name}"
    assert user_id(make_client(name, "s3cret")).startswith("basicauth:")

    mine, _ = make_client(name, "n3w").session.request("get", "/accounts")
    assert [a["id"] for a in mine["data"]] == [name]
    make_client(name, "n3w").session.request("delete", f"/accounts/{name}")
    assert user_id(make_client(name, "n3w")).startswith("basicauth:")
    owner.delete_bucket(id=b)


def test_permissions_endpoint(capabilities, owner, bucket, make_client):
    needs(capabilities, "permissions_endpoint")
    bob = make_client()
    bob_id = user_id(bob)
    owner.create_collection(id="c", bucket=bucket)
    owner.create_record(bucket=bucket, collection="c", id="r",
                        data={}, permissions={"read": [bob_id]})

    entries = owner.get_permissions()
    mine = {e["uri"]: e for e in entries if e["uri"].startswith(f"/buckets/{bucket}")}
    assert set(mine) == {f"/buckets/{bucket}", f"/buckets/{bucket}/collections/c",
                         f"/buckets/{bucket}/collections/c/records/r"}
    assert "write" in mine[f"/buckets/{bucket}"]["permissions"]
    assert mine[f"/buckets/{bucket}"]["resource_name"] == "bucket"
    assert mine[f"/buckets/{bucket}/collections/c/records/r"]["resource_name"] == "record"

    theirs = [e for e in bob.get_permissions() if e["uri"].startswith(f"/buckets/{bucket}")]
    assert [(e["uri"], sorted(e["permissions"])) for e in theirs] == [
        (f"/buckets/{bucket}/collections/c/records/r", ["read"])
    ]
    no_records = owner.get_permissions(exclude_resource_names=["record"])
    assert all(e["resource_name"] != "record" for e in no_records)


def test_attachments(capabilities, coll, tmp_path):
    needs(capabilities, "attachments")
    content = b"hello, attachment\n" * 50
    src = tmp_path / "hello.txt"
    src.write_bytes(content)
    sha256 = hashlib.sha256(content).hexdigest()

    coll.create_record(id="doc", data={"title": "with file"})
    meta = coll.add_attachment(id="doc", filepath=str(src))
    assert meta["filename"] == "hello.txt"
    assert meta["size"] == len(content)
    assert meta["hash"] == sha256
    assert meta["mimetype"] == "text/plain"
    record = coll.get_record(id="doc")["data"]
    assert record["title"] == "with file"
    assert record["attachment"] == meta

    # Download (kinto-http checks nothing; we compare the bytes). The real
    # kinto-attachment with local storage leaves serving the files to a web
    # server in front of Kinto, so the reference (Kinto 26.5.0) answers 404
    # here; a server that serves its files itself (Cairn) must return them.
    # The URL as kinto-http builds it: the capability's base_url + location
    # (the reference's location is absolute, which urljoin keeps as is).
    base_url = capabilities["attachments"]["base_url"]
    url = urljoin(base_url.rstrip("/") + "/", meta["location"].lstrip("/"))
    served = requests.get(url, timeout=TIMEOUT)
    if served.status_code == 404 and coll.server_info()["project_version"] == "26.5.0":
        pass
    else:
        out_dir = tmp_path / "downloads"
        out_dir.mkdir()
        path = coll.download_attachment(record, filepath=str(out_dir))
        assert open(path, "rb").read() == content

    # Upload that creates the record, with data and permissions.
    created = coll.add_attachment(id="new-doc", filepath=str(src), filename="notes.txt",
                                  data={"kind": "note"}, permissions={"read": ["system.Everyone"]})
    assert created["filename"] == "notes.txt"
    new = coll.get_record(id="new-doc")
    assert new["data"]["kind"] == "note"
    assert new["permissions"]["read"] == ["system.Everyone"]

    # Replacing the file.
    src.write_bytes(b"v2")
    replaced = coll.add_attachment(id="doc", filepath=str(src))
    assert replaced["size"] == 2
    assert replaced["location"] != meta["location"]

    coll.remove_attachment(id="doc")
    assert coll.get_record(id="doc")["data"]["attachment"] is None


# ---------------------------------------------------------------------------
# Errors the client surfaces
# ---------------------------------------------------------------------------


def test_anonymous_and_errors(coll, make_client):
    anon = make_client(anonymous=True, bucket=coll.bucket_name, collection=coll.collection_name)
    with pytest.raises(KintoException) as e:
        anon.get_records()
    assert status_of(e) == 401
    assert error_body(e)["errno"] == 104
    with pytest.raises(KintoException) as e:
        coll.update_record(id="x", data={"id": "y"})
    assert status_of(e) == 400
    assert error_body(e)["errno"] == 107
    with pytest.raises(KintoException) as e:
        coll.get_records(_limit="abc")
    assert status_of(e) == 400
    # The client refuses nothing that the server would accept: raw session calls work.
    body, headers = coll.session.request("get", "/")
    assert body["http_api_version"] == "1.23"
    assert requests.get(coll.session.server_url + "/__heartbeat__", timeout=TIMEOUT).ok
