"""Start-up pauses the cyclic garbage collector (`serve` and `prober` load every provider SDK
before they say ready); once ready it must collect again, without walking what start-up built."""

from __future__ import annotations

import gc

from bot.wiring.serve import settled


def test_ready_resumes_collection_and_leaves_start_up_objects_out() -> None:
    gc.disable()
    try:
        settled()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # what start-up built is no longer walked
    finally:
        gc.unfreeze()
        gc.enable()
