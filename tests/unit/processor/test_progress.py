"""The per-batch log line's account of the stateful operators (processor.progress)."""

from processor.progress import state_figures


def test_each_operator_is_named_with_what_it_held_and_did() -> None:
    operators = [
        {"operatorName": "stateStoreSave", "numRowsTotal": 200, "numRowsUpdated": 50,
         "numRowsRemoved": 50, "allUpdatesTimeMs": 154, "allRemovalsTimeMs": 9,
         "commitTimeMs": 7, "memoryUsedBytes": 2146472},
        {"operatorName": "dedupe", "numRowsTotal": 33538, "numRowsUpdated": 2504,
         "numRowsRemoved": 10000, "allUpdatesTimeMs": 146, "allRemovalsTimeMs": 213,
         "commitTimeMs": 9},
    ]  # fmt: skip
    assert state_figures(operators) == (
        "stateStoreSave rows=200 updated=50 removed=50 updates_ms=154 removals_ms=9 commit_ms=7; "
        "dedupe rows=33538 updated=2504 removed=10000 updates_ms=146 removals_ms=213 commit_ms=9"
    )


def test_a_figure_spark_did_not_report_is_left_out_not_invented() -> None:
    assert state_figures([{"operatorName": "dedupe", "numRowsTotal": 3}]) == "dedupe rows=3"
    assert state_figures([]) == ""
