"""The core app: novalet's own objects, tables and releases, declared as
any other app is (entry point ``novalet.apps``: ``novalet``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from novalet import app


class _CoreReleases(Mapping[str, Mapping[str, str]]):
    """The core's releases, read from ``SERVICE_VERSION_HISTORY`` (the one
    place they are written down) when first asked."""

    def _history(self) -> dict[str, Mapping[str, str]]:
        from novalet.objects import service

        return {str(entry["release"]): entry["objects"]
                for entry in service.SERVICE_VERSION_HISTORY.values()}

    def __getitem__(self, release: str) -> Mapping[str, str]:
        return self._history()[release]

    def __iter__(self) -> Iterator[str]:
        return iter(self._history())

    def __len__(self) -> int:
        return len(self._history())


APP = app.App(
    name="novalet",
    object_modules=[
        "novalet.objects.pci_device_pool",
        "novalet.objects.monitor_metric",
        "novalet.objects.service",
        "novalet.objects.compute_node",
        "novalet.objects.instance",
        "novalet.objects.migration",
    ],
    migrations="novalet.db:migrations",
    releases=_CoreReleases(),
)
