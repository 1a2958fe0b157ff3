"""[auth] options: the keys requests are signed with, and whether unsigned
requests are still served (see ``novalet.auth``)."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("auth", title="Signed RPC requests")

opts = [
    cfg.StrOpt("master_key_file", default=None,
               help="The master key (conductors, and admin commands such as "
                    "novalet-manage): written by 'novalet-manage auth init', "
                    "mode 0600. A process holding it verifies every request "
                    "and signs its own as the admin."),
    cfg.StrOpt("key_file", default=None,
               help="This host's own key (computes and other agents): "
                    "written by 'novalet-manage auth host-key HOST --output "
                    "FILE', mode 0600. Its host must be [DEFAULT] host; the "
                    "process signs as that host and may write only that "
                    "host's records."),
    cfg.BoolOpt("enforce", default=True, mutable=True,
                help="Refuse requests that carry no signature. Set it to "
                     "false only during a rolling upgrade from release 2 "
                     "(whose services do not sign), until 'novalet-status "
                     "upgrade check' says every service signs. Signed "
                     "requests are verified and scoped either way; the "
                     "in-process fake:// transport needs no keys."),
    cfg.BoolOpt("require_reply_auth", default=True, mutable=True,
                help="Refuse a reply to a signed call that is not "
                     "authenticated (a MAC over the call's nonce and the "
                     "reply, with the key the call was signed with), as a "
                     "release 3 service sends. Set it to false only during "
                     "a rolling upgrade from release 3, on the upgraded "
                     "services, until every conductor and compute runs "
                     "release 4; meanwhile an unauthenticated reply is "
                     "accepted (and logged) whoever sent it, but only while "
                     "the version caps of the called services say one of "
                     "them may run release 3 ([upgrade_levels]: auto finds a "
                     "release 3 service, or a pin to release 3 or older): "
                     "once they say every one runs release 4, it is refused "
                     "whatever this option says. Authenticated replies are "
                     "checked either way."),
    cfg.IntOpt("timestamp_window", default=60, min=1, max=3600,
               mutable=True,
               help="Seconds a signed request stays valid after it was "
                    "signed, by the receiver's clock (a sender's clock may be "
                    "behind by up to this much; ahead: max_clock_ahead). A "
                    "request seen once in this window is refused if it comes "
                    "again (replay)."),
    cfg.IntOpt("max_clock_ahead", default=5, min=0, max=3600, mutable=True,
               help="Seconds a signed request's timestamp may be ahead of "
                    "the receiver's clock (at most timestamp_window). Keep "
                    "the clocks in step (NTP): a request signed further "
                    "ahead is refused. A request dated ahead stays in the "
                    "replay cache longer, so a tight bound keeps the cache "
                    "small."),
    cfg.IntOpt("replay_cache_size", default=200000, min=1000,
               help="Most signatures a process remembers against replay, "
                    "counted per verified principal. When it is full, the "
                    "oldest of the principal holding the most are forgotten "
                    "and that principal's requests signed before them are "
                    "refused as stale: a flood from one host never makes "
                    "another's requests refused."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
