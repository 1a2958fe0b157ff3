"""``novalet.rpc.internals`` against oslo.messaging's own public output: an
upgrade of the library that moves or changes what novalet reaches into
fails here, not in a deployment."""

from __future__ import annotations

import sys

import oslo_messaging
from oslo_config import cfg
from oslo_messaging import opts as messaging_opts

from novalet import exception
from novalet.rpc import internals


def test_transport_opts_are_the_ones_the_library_lists():
    listed = {opt.name: opt for group, opts in messaging_opts.list_opts()
              if group is None for opt in opts}
    ours = internals.transport_opts()
    assert {opt.name for opt in ours} >= {"transport_url", "control_exchange"}
    for opt in ours:
        assert opt.name in listed, opt.name
        assert type(opt) is type(listed[opt.name]), opt.name


def test_transport_opts_are_what_a_transport_registers():
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    oslo_messaging.get_rpc_transport(conf, url="fake://")
    for opt in internals.transport_opts():
        assert conf._get_opt_info(opt.name)["opt"] is opt, opt.name


def test_remote_exceptions_round_trip_as_the_drivers_do():
    try:
        raise exception.InstanceNotFound(instance_id="i-1")
    except exception.InstanceNotFound:
        data = internals.serialize_remote_exception(sys.exc_info())
    rebuilt = internals.deserialize_remote_exception(data, [exception.__name__])
    assert isinstance(rebuilt, exception.InstanceNotFound)
    assert rebuilt.kwargs == {"instance_id": "i-1"}


def test_reply_queue_names_are_the_librarys_with_the_host_in_front():
    """The driver's own name is ``reply_<uuid hex>`` (the queue manager's:
    ``reply_<hostname>:<processname>:<n>``); novalet's is its prefix plus
    what the library put after ``reply_``. (That the driver's calls use
    this name: tests/functional/test_replies.py, over RabbitMQ.)"""
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    transport = oslo_messaging.get_rpc_transport(
        conf, url="rabbit://guest:guest@127.0.0.1:1/")
    try:
        library = transport._driver._get_reply_queue_name()
        assert library.startswith(internals.REPLY_PREFIX)
        assert len(library) == len(internals.REPLY_PREFIX) + 32
        assert internals.name_reply_queues(transport, "reply_h-1:bin:")
        named = transport._driver._get_reply_queue_name()
        assert named.startswith("reply_h-1:bin:")
        int(named[len("reply_h-1:bin:"):], 16)
        assert len(named) == len("reply_h-1:bin:") + 32
        # Naming twice wraps the library's own once; too long a name keeps
        # the prefix and a digest of the rest (RabbitMQ's 255 bytes).
        long = "reply_" + "h" * 200 + ":bin:"
        assert internals.name_reply_queues(transport, long)
        named = transport._driver._get_reply_queue_name()
        assert named.startswith(long) and len(named) <= internals.MAX_QUEUE_NAME
        assert internals.reply_queue_name(transport) is None  # none made yet
    finally:
        transport.cleanup()
    fake = oslo_messaging.get_rpc_transport(conf, url="fake://")
    assert not internals.name_reply_queues(fake, "reply_h:bin:")
