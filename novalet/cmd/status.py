"""``novalet-status upgrade check``: is this deployment ready for this release?

    novalet-status [--config-file F] upgrade check [--json]

Run with the new code's configuration before restarting services. Each check
answers Success, Warning or Failure with a detail saying what to do; the exit
code is the worst of them (oslo.upgradecheck: 0 success, 1 warning,
2 failure; 255 if a check itself crashed, which these turn into a Failure).
These keep oslo.upgradecheck's meaning rather than the other commands' (1
failed, 2 usage): deployment tools branch on it. A bad command line also
exits 2, with one line on stderr; 3 means the database could not be reached
and nothing was checked (see ``novalet.cmd.exit_codes``).

The checks read the database directly (like ``novalet-manage db``), whatever
``[objects] indirection`` says. The ones that read records run only when the
schema is at the newest revision, so they never query columns an older schema
lacks.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from oslo_upgradecheck import upgradecheck

from novalet import conf as novalet_conf
from novalet import context as novalet_context
from novalet import indirection, objects
from novalet.cmd import exit_codes, manage_cli

LOG = logging.getLogger(__name__)

BINARY = "novalet-status"

DESCRIPTION = (
    "Checks whether a novalet deployment is ready for this release: run it "
    "with the new release's code and configuration before restarting the "
    "services. Each check answers Success, Warning or Failure, with what to "
    "do. " + novalet_conf.OPTIONS_HELP)
USAGE = "%(prog)s [--config-file PATH] [options] upgrade check [--json]"
COMPUTE_BINARY = "novalet-compute"

#: ``services.last_auth`` of a heartbeat that proves the service signs (or
#: runs inside the conductor's process).
SIGNED = frozenset({"host", "admin", "local"})

#: How many offending records a detail names before "and N more".
MAX_LISTED = 10

Code = upgradecheck.Code
Result = upgradecheck.Result


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown += " and %d more" % (len(items) - MAX_LISTED)
    return shown


def _guarded(check: Callable[[UpgradeChecks], Result]
             ) -> Callable[[UpgradeChecks], Result]:
    """A check that raises answers Failure with the error's first line
    (oslo.upgradecheck would abort every check with a traceback)."""
    @functools.wraps(check)
    def wrapper(self: UpgradeChecks) -> Result:
        try:
            return check(self)
        except Exception as e:
            LOG.debug("check %s failed", check.__name__, exc_info=True)
            return Result(Code.FAILURE, "This check could not run: %s: %s" % (
                type(e).__name__, manage_cli.first_line(str(e))))
    return wrapper


class UpgradeChecks(upgradecheck.UpgradeCommands):
    """novalet's upgrade readiness checks, on the configuration ``conf``."""

    display_title = "novalet upgrade check results"

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self.conf = conf

    def _schema(self, app: str | None = None) -> tuple[str | None, str | None]:
        """The revision and head of ``app``'s lineage (None: the core's)."""
        from novalet.db import migration

        if app is None:
            return migration.db_version(), migration.head_revision()
        return migration.db_version(app), migration.head_revision(app)

    def _apps_behind(self) -> list[str]:
        """The loaded apps (not the core) whose schema is not at their
        newest revision, each as ``"NAME (at REV, needs HEAD)"``."""
        from novalet.db import migration

        behind = []
        for app in migration.lineages()[1:]:
            current, head = self._schema(app)
            if current != head:
                behind.append("%s (at %s, needs %s)" % (app, current or "nothing",
                                                         head))
        return behind

    def _schema_not_current(self) -> Result | None:
        current, head = self._schema()
        if current == head and not self._apps_behind():
            return None
        return Result(Code.WARNING, "Not checked: the database schema is not "
                      "at the newest revision (see the schema check); run "
                      "'novalet-manage db sync' and check again.")

    @_guarded
    def check_schema(self) -> Result:
        """Failure unless the database is at the newest migration."""
        current, head = self._schema()
        if current is None:
            return Result(Code.FAILURE, "The database has no novalet schema "
                          "(never synced); run 'novalet-manage db sync'.")
        if current != head:
            return Result(Code.FAILURE, "The database schema is at revision %s; "
                          "this release needs %s. Run 'novalet-manage db sync'."
                          % (current, head))
        behind = self._apps_behind()
        if behind:
            return Result(Code.FAILURE, "App schemas behind: %s. Run "
                          "'novalet-manage db sync'." % ", ".join(behind))
        return Result(Code.SUCCESS, "The database schema is at revision %s, "
                      "the newest this release knows." % head)

    @_guarded
    def check_service_versions(self) -> Result:
        """Failure while a live service is older than the oldest supported."""
        from novalet.upgrade import releases

        skipped = self._schema_not_current()
        if skipped is not None:
            return skipped
        oldest = releases.OLDEST_SUPPORTED_SERVICE_VERSION
        release = releases.release_of_service_version(oldest) or "?"
        services = list(objects.ServiceList.get_all(
            novalet_context.get_admin_context()))
        too_old = ["%s/%s (version %d)" % (s.host, s.binary, s.version)
                   for s in services if s.version < oldest]
        if too_old:
            return Result(Code.FAILURE, "%d service(s) are older than the oldest "
                          "this release supports (version %d, release %s): %s. "
                          "Upgrade them first, or delete records of services "
                          "that no longer run with 'novalet-manage service "
                          "delete HOST BINARY'." % (len(too_old), oldest, release,
                                                     _listing(too_old)))
        if not services:
            return Result(Code.SUCCESS, "No services are registered.")
        lowest = min(s.version for s in services)
        return Result(Code.SUCCESS, "All %d service(s) are at version %d "
                      "(release %s) or newer; the oldest this release supports "
                      "is version %d (release %s)." % (
                          len(services), lowest,
                          releases.release_of_service_version(lowest) or "?",
                          oldest, release))

    @_guarded
    def check_services_holding_caps(self) -> Result:
        """Warning for services of an older release that are down: ``auto``
        still counts them, so every caller keeps speaking their release."""
        from novalet.servicegroup import api as servicegroup_api
        from novalet.upgrade import releases

        skipped = self._schema_not_current()
        if skipped is not None:
            return skipped
        current = releases.SERVICE_VERSION
        ctxt = novalet_context.get_admin_context()
        services = [s for s in objects.ServiceList.get_all(ctxt)
                    if s.version < current and not s.forced_down]
        # The driver alone: servicegroup.API would also "fix" a too short
        # service_down_time in the configuration the timing check reads.
        driver = servicegroup_api.load_driver(self.conf.servicegroup_driver,
                                              self.conf)
        try:
            older = list(zip(services, driver.are_up(ctxt, services), strict=True))
        finally:
            driver.stop()
        down = [s for s, up in older if not up]
        if down:
            names = sorted({releases.release_of_service_version(s.version)
                            or str(s.version) for s in down})
            commands = ["novalet-manage service delete %s %s" % (s.host, s.binary)
                        for s in down]
            return Result(Code.WARNING, "%d service(s) of an older release are "
                          "down, and [upgrade_levels] auto still counts them: "
                          "callers keep speaking release %s. %s. Delete the "
                          "record of each one that will not come back: %s."
                          % (len(down), ", ".join(names), _listing(
                              ["%s/%s (version %d, down)" % (s.host, s.binary,
                                                             s.version)
                               for s in down]),
                             _listing(commands)))
        if older:
            return Result(Code.SUCCESS, "%d running service(s) are of an older "
                          "release; the version caps follow them until they are "
                          "upgraded: %s." % (len(older), _listing(
                              ["%s/%s (version %d)" % (s.host, s.binary, s.version)
                               for s, _up in older])))
        return Result(Code.SUCCESS, "No service of an older release holds the "
                      "version caps down.")

    @_guarded
    def check_heartbeat_timing(self) -> Result:
        """Failure when ``service_down_time`` does not exceed
        ``report_interval``; Warning when it is under twice that."""
        interval = self.conf.report_interval
        down = self.conf.service_down_time
        if down <= interval:
            return Result(Code.FAILURE, "service_down_time (%ds) must be larger "
                          "than report_interval (%ds), or services flap between "
                          "up and down; services override it with %ds and log a "
                          "warning. Set service_down_time to at least %d."
                          % (down, interval, int(interval * 2.5), 2 * interval))
        if down < 2 * interval:
            return Result(Code.WARNING, "service_down_time (%ds) is less than "
                          "twice report_interval (%ds): one late heartbeat marks "
                          "a service down. Set service_down_time to at least %d."
                          % (down, interval, 2 * interval))
        return Result(Code.SUCCESS, "service_down_time (%ds) is %.1f times "
                      "report_interval (%ds)." % (down, down / interval, interval))

    @_guarded
    def check_orphan_compute_nodes(self) -> Result:
        """Warning for compute nodes whose host has no live compute service."""
        skipped = self._schema_not_current()
        if skipped is not None:
            return skipped
        ctxt = novalet_context.get_admin_context()
        hosts = {s.host for s in objects.ServiceList.get_by_binary(ctxt, COMPUTE_BINARY)}
        nodes = list(objects.ComputeNodeList.get_all(ctxt))
        orphans = ["%s/%s (id %d)" % (n.host, n.hypervisor_hostname, n.id)
                   for n in nodes if n.host not in hosts]
        if orphans:
            return Result(Code.WARNING, "%d compute node(s) have no live %s "
                          "service on their host: %s. Their resources still "
                          "count in 'novalet-manage hypervisor stats'. Start %s "
                          "on those hosts, or delete the node records."
                          % (len(orphans), COMPUTE_BINARY, _listing(orphans),
                             COMPUTE_BINARY))
        if not nodes:
            return Result(Code.SUCCESS, "No compute nodes are registered.")
        return Result(Code.SUCCESS, "All %d compute node(s) belong to a live "
                      "%s service." % (len(nodes), COMPUTE_BINARY))

    @_guarded
    def check_stored_json(self) -> Result:
        """Warning for rows whose stored JSON does not parse (they read as
        empty values until written again)."""
        from novalet.db import compute_nodes as db_nodes

        skipped = self._schema_not_current()
        if skipped is not None:
            return skipped
        rows = db_nodes.compute_node_get_all(novalet_context.get_admin_context())
        bad = []
        for row in rows:
            columns = objects.ComputeNode.obj_corrupt_columns(row)
            if columns:
                bad.append("compute_nodes id %d (%s/%s): %s" % (
                    row.id, row.host, row.hypervisor_hostname, ", ".join(columns)))
        if bad:
            return Result(Code.WARNING, "%d row(s) hold stored JSON that does "
                          "not parse: %s. They stay readable, those values "
                          "reading as empty (each logged once as a warning); "
                          "the compute writes them again at its next resource "
                          "audit, or a save() of the object does." % (
                              len(bad), _listing(bad)))
        return Result(Code.SUCCESS, "Every stored JSON value of %d compute "
                      "node(s) parses." % len(rows))

    @_guarded
    def check_signing(self) -> Result:
        """Warning (Failure with ``[auth] enforce`` true) while a service's
        last heartbeat was not signed: a release 2 service, or one without
        its key; ``enforce`` must stay false until every service signs."""
        from novalet.db import services as db_services

        skipped = self._schema_not_current()
        if skipped is not None:
            return skipped
        rows = db_services.service_get_signing(novalet_context.get_admin_context())
        unsigned = ["%s/%s (%s)" % (r.host, r.binary,
                                    "version %d" % r.version if r.version < 3
                                    else "heartbeat %s" % (r.last_auth
                                                           or "not recorded"))
                    for r in rows if r.last_auth not in SIGNED]
        if unsigned:
            if self.conf.auth.enforce:
                return Result(Code.FAILURE, "%d service(s) do not sign their "
                              "requests, and [auth] enforce is true: their "
                              "requests are refused. %s. Give each compute "
                              "its key ([auth] key_file, novalet-manage auth "
                              "host-key HOST --output FILE) and upgrade "
                              "release 2 services, or set [auth] enforce = "
                              "false until they sign." % (
                                  len(unsigned), _listing(unsigned)))
            return Result(Code.WARNING, "%d service(s) do not sign their "
                          "requests yet: %s. Keep [auth] enforce = false "
                          "until every service signs: give each compute its "
                          "key ([auth] key_file, novalet-manage auth host-key "
                          "HOST --output FILE), upgrade release 2 services, "
                          "and check again after a heartbeat." % (
                              len(unsigned), _listing(unsigned)))
        if not rows:
            return Result(Code.SUCCESS, "No services are registered.")
        if not self.conf.auth.enforce:
            return Result(Code.SUCCESS, "All %d service(s) sign their "
                          "requests: set [auth] enforce = true on every "
                          "service (and SIGHUP or restart them)." % len(rows))
        return Result(Code.SUCCESS, "All %d service(s) sign their requests."
                      % len(rows))

    _upgrade_checks = (
        ("Database schema", check_schema),
        ("Service versions", check_service_versions),
        ("Services holding the version caps", check_services_holding_caps),
        ("Heartbeat timing", check_heartbeat_timing),
        ("Compute nodes without a service", check_orphan_compute_nodes),
        ("Stored JSON values", check_stored_json),
        ("Signed requests", check_signing),
    )


def _run(conf: cfg.ConfigOpts) -> int:
    action = conf.command.check
    if action != "check":
        manage_cli.error(BINARY, "unknown upgrade action %r; the only one is "
                                 "'check' (see %s --help)" % (action, BINARY))
        return manage_cli.EXIT_USAGE
    # Direct: the checks run here, on the database.
    indirection.reset()
    manage_cli.check_database(conf)
    upgradecheck.CONF = conf  # where check() looks for --json
    with warnings.catch_warnings():
        # oslo.upgradecheck 2.8 draws its table with a prettytable constant
        # prettytable deprecates; nothing a user of this command can act on.
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message="the 'ALL' constant is deprecated")
        return int(upgradecheck.run(conf))


def _command_opt(checks: UpgradeChecks) -> novalet_conf.CommandOpt:
    """``upgrade check [--json]`` (as oslo.upgradecheck's
    ``register_cli_options`` adds it, with help and the words of ours)."""
    def add_parsers(subparsers: Any) -> None:
        upgrade = subparsers.add_parser(
            "upgrade", help="is this deployment ready for this release: "
                            "'upgrade check [--json]'")
        upgrade.add_argument("check", metavar="ACTION",
                             help="check: run every check (the only action)")
        upgrade.add_argument("--json", action="store_true",
                             help="print the results as JSON (default: a "
                                  "table)")
        upgrade.set_defaults(action_fn=checks.check)

    return novalet_conf.CommandOpt("command", metavar="COMMAND",
                                   title="commands", handler=add_parsers,
                                   help="what to check")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``novalet-status``; returns its exit code. ``argv`` excludes the
    program name (default: ``sys.argv[1:]``). Can run any number of times in
    one process; ``CONF`` is left unparsed after."""
    CONF = novalet_conf.CONF
    checks = UpgradeChecks(CONF)
    with manage_cli.sub_command(
            CONF, "command", lambda: CONF.register_cli_opt(_command_opt(checks))):
        code = manage_cli.parse(argv, BINARY, epilog=exit_codes.STATUS_HELP,
                                description=DESCRIPTION, usage=USAGE)
        if code is not None:
            return code
        return manage_cli.run(BINARY, _run, CONF, failed=int(Code.FAILURE))


if __name__ == "__main__":
    sys.exit(main())
