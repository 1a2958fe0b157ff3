"""The servicegroup API: services report they are alive, anyone asks who is.

``API(conf)`` loads the driver ``[DEFAULT] servicegroup_driver`` names from
the entry point namespace ``novalet.servicegroup_drivers`` (``db``, ``tooz``
or a third party's) through stevedore. ``novalet.service.Service`` calls
``join(host, topic, service)`` after start and ``leave`` at stop.

``service_down_time`` must exceed ``report_interval``, or one late beat would
mark a healthy service down: when it does not, the API raises it to
``int(2.5 * report_interval)`` on the configuration and logs a warning (once:
afterwards the values agree).
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from stevedore import driver as stevedore_driver

from novalet import exception, objects
from novalet.servicegroup.drivers.base import ServiceGroupDriver

LOG = logging.getLogger(__name__)

NAMESPACE = "novalet.servicegroup_drivers"


def check_report_interval(conf: cfg.ConfigOpts) -> None:
    """Make ``service_down_time`` larger than ``report_interval``, raising it
    to ``int(2.5 * report_interval)`` with a warning if needed."""
    report_interval = conf.report_interval
    if report_interval and conf.service_down_time <= report_interval:
        new = int(report_interval * 2.5)
        LOG.warning("service_down_time (%(down)ss) must be larger than "
                    "report_interval (%(report)ss), or services would flap "
                    "between up and down; using service_down_time=%(new)s",
                    {"down": conf.service_down_time,
                     "report": report_interval, "new": new})
        conf.set_override("service_down_time", new)


def load_driver(name: str, conf: cfg.ConfigOpts, *,
                initial_delay: float | None = None) -> ServiceGroupDriver:
    """Construct the servicegroup driver registered as ``name``.

    Raises ``ConfigurationError`` when no such driver can be loaded.
    """
    kwargs = {} if initial_delay is None else {"initial_delay": initial_delay}
    manager: Any
    try:
        manager = stevedore_driver.DriverManager(
            NAMESPACE, name, invoke_on_load=True, invoke_args=(conf,),
            invoke_kwds=kwargs)
    except Exception as e:
        raise exception.ConfigurationError(
            reason="servicegroup_driver=%r cannot be loaded from entry point "
                   "namespace %s: %s" % (name, NAMESPACE, e))
    driver: Any = manager.driver
    if not isinstance(driver, ServiceGroupDriver):
        for method in ("join", "leave", "is_up", "are_up", "stop"):
            if not callable(getattr(driver, method, None)):
                raise exception.ConfigurationError(
                    reason="servicegroup driver %r has no %s()" % (name, method))
    return driver  # type: ignore[no-any-return]


class API:
    """Service liveness through one driver.

    ``driver`` replaces the configured one (tests, or a driver built with
    arguments the configuration cannot express); ``initial_delay`` is the
    seconds between ``join`` and the first heartbeat (the driver's default,
    5, when None).
    """

    def __init__(self, conf: cfg.ConfigOpts, *,
                 driver: ServiceGroupDriver | None = None,
                 initial_delay: float | None = None) -> None:
        self.conf = conf
        check_report_interval(conf)
        objects.register_all()
        self.initial_delay = initial_delay
        self.driver = driver if driver is not None else load_driver(
            conf.servicegroup_driver, conf, initial_delay=initial_delay)

    def join(self, host: str, topic: str, service: Any, *,
             initial_delay: float | None = None) -> None:
        """Start the heartbeat of ``service`` (it has ``.service_ref``, the
        ``Service`` object, and ``.binary``) as ``host`` on ``topic``.

        Raises ``Conflict`` when ``(host, topic)`` already joined through this
        API, and the driver's backend errors when it cannot set up (tooz).
        """
        if initial_delay is None:
            initial_delay = self.initial_delay
        self.driver.join(host, topic, service, initial_delay=initial_delay)

    def leave(self, host: str, topic: str, service: Any = None) -> None:
        """Stop the heartbeat of ``(host, topic)``; no beat runs after this
        returns. A no-op for one that did not join."""
        self.driver.leave(host, topic, service)

    def is_up(self, service_ref: Any) -> bool:
        """Whether the ``Service`` object ``service_ref`` is alive; a forced
        down service never is.

        Raises the backend's errors when it cannot be asked (db: ``RPCTimeout``,
        ``RPCUnavailable``, ``DatabaseUnavailable``; tooz: ``tooz.ToozError``).
        """
        return self.driver.is_up(service_ref)

    def get_all(self, ctxt: Any, binary: str | None = None) -> list[tuple[Any, bool]]:
        """Every live (not deleted) ``Service`` record, of ``binary`` if
        given, each paired with whether it is up: ``[(service, is_up), ...]``
        in record id order. The db driver reads the database clock once for
        all of them; tooz asks once per topic.

        Raises what ``ServiceList.get_all`` and ``is_up`` raise.
        """
        services = list(objects.ServiceList.get_all(ctxt, binary=binary))
        return list(zip(services, self.driver.are_up(ctxt, services),
                        strict=True))

    def stop(self) -> None:
        """Stop every heartbeat this API started (and the driver's clients)."""
        self.driver.stop()
