"""The request context on the RPC wire: ``to_wire()`` leaves out only what
``from_dict()`` restores by itself."""

from __future__ import annotations

import pytest

from novalet import context

#: A value for every argument oslo.context's RequestContext stores.
_SET = dict(auth_token="token", user_id="u1", project_id="p1", domain_id="d1",
            user_domain_id="ud1", project_domain_id="pd1", is_admin=True,
            read_only=True, show_deleted=True, global_request_id="req-global",
            resource_uuid="r1", roles=["reader", "admin"],
            is_admin_project=False, system_scope="all")
#: The opposite of each value's default-ness: None, False, empty, True.
_UNSET = dict(auth_token=None, user_id=None, project_id=None, domain_id=None,
              user_domain_id=None, project_domain_id=None, is_admin=False,
              read_only=False, show_deleted=False, global_request_id=None,
              resource_uuid=None, roles=[], is_admin_project=True,
              system_scope=None)


def _contexts():
    yield context.get_admin_context()
    yield context.RequestContext(overwrite=False)
    yield context.RequestContext(overwrite=False, **_SET)
    yield context.RequestContext(overwrite=False, is_admin_project=None)
    for key in sorted(_SET):  # each value alone set, and alone unset
        yield context.RequestContext(overwrite=False, **{**_UNSET, key: _SET[key]})
        yield context.RequestContext(overwrite=False, **{**_SET, key: _UNSET[key]})


@pytest.mark.parametrize("ctxt", list(_contexts()))
def test_wire_form_restores_the_same_context(ctxt):
    wire = ctxt.to_wire()
    assert context.RequestContext.from_dict(wire, overwrite=False).to_dict() \
        == ctxt.to_dict()
    assert wire["request_id"] == ctxt.request_id  # never made up anew


def test_wire_form_leaves_out_the_defaults():
    ctxt = context.get_admin_context()
    assert ctxt.to_wire() == {"is_admin": True, "request_id": ctxt.request_id}
    everything = context.RequestContext(overwrite=False, **_SET).to_wire()
    assert everything["is_admin_project"] is False
    assert everything["roles"] == ["reader", "admin"]
