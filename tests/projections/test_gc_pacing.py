"""The audit's collector pacing is scoped: raised while bulk folds run (also
nested or from several threads), restored when the last one ends, even on
an error."""

from __future__ import annotations

import gc

import pytest

from projections.gc_pacing import BULK_THRESHOLDS, bulk_fold_pacing


def test_thresholds_are_raised_inside_and_restored_after_the_last_fold():
    before = gc.get_threshold()
    with bulk_fold_pacing():
        assert gc.get_threshold() == BULK_THRESHOLDS
        with bulk_fold_pacing():
            assert gc.get_threshold() == BULK_THRESHOLDS
        assert gc.get_threshold() == BULK_THRESHOLDS
    assert gc.get_threshold() == before


def test_thresholds_are_restored_when_the_fold_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), bulk_fold_pacing():
        raise RuntimeError("fold failed")
    assert gc.get_threshold() == before
