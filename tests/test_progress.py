"""Progress events read back from the store: the typed accessor the pages' progress bars use."""

from __future__ import annotations

from compression.progress import Progress
from compression.store import Store
from tests.jobs import make_recipe


def test_a_stored_event_reads_back_as_the_event(tmp_path):
    store = Store(tmp_path / "lab")
    run_id = store.create_run(make_recipe(), job="tests.jobs:quick_job", session="s1")
    assert Progress.from_dict(store.get_run(run_id)["progress"]) == Progress(phase="")  # no event yet

    event = Progress("fine_tune", "int8", 0.25, epoch=1, epochs=2, batch=3, loss=0.5, message="int8: epoch 1/2")
    store.add_event(run_id, event)
    back = Progress.from_dict(store.get_run(run_id)["progress"])
    assert back == event
    assert back.bounded_fraction == 0.25


def test_odd_fields_take_their_defaults_and_the_bar_stays_within_one():
    odd = Progress.from_dict({"phase": "convert", "fraction": 1.7, "message": None, "variant": None, "unknown": 1})
    assert (odd.phase, odd.variant, odd.message, odd.fraction) == ("convert", "", "", 1.7)
    assert odd.bounded_fraction == 1.0
    assert Progress.from_dict({"fraction": "soon"}).bounded_fraction == 0.0
    assert Progress.from_dict({"fraction": -0.2}).bounded_fraction == 0.0
