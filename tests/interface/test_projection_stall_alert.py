"""A service whose read models stop following the log (no projector runs in
it, and no worker elsewhere) raises projection_stalled; one whose projector
runs never does."""

from __future__ import annotations

from uuid import uuid4

from application import commands as c
from application.alerts import AlertKind
from application.authority import INTERNAL
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings
from tests.support.http import wait_until

QUICK_WATCH = {"health_watch_interval_s": 0.05, "projection_stall_s": 0.3,
               "settlement_enabled": False}


def run(service: LedgerService, *, projections: bool) -> None:
    service.start(projections=projections)
    service.writer.execute(c.OpenAccount(uuid4()), authority=INTERNAL)


def test_read_models_left_behind_raise_projection_stalled(tmp_path, raised):
    service = LedgerService(Settings(data_dir=tmp_path / "var", **QUICK_WATCH))
    try:
        run(service, projections=False)
        [alert] = wait_until(lambda: raised.of(AlertKind.PROJECTION_STALLED), 10,
                             "the projection_stalled alert")
        assert alert.fields["log_position"] > alert.fields["read_model_position"]
    finally:
        service.stop()


def test_a_running_projector_never_stalls(tmp_path, raised):
    service = LedgerService(Settings(data_dir=tmp_path / "var", **QUICK_WATCH))
    try:
        run(service, projections=True)
        head = service.store_position()
        wait_until(lambda: service.queries.position() >= head, 10, "the projector")
        watch = service.alerting.health_watch
        enough = watch.checks_done + 20  # 1 s of watching: several stall periods
        wait_until(lambda: watch.checks_done >= enough, 10, "20 checks of the watch")
        assert raised.of(AlertKind.PROJECTION_STALLED) == []
    finally:
        service.stop()
