"""Cutting to a budget keeps what matters and says what it dropped."""

from tools import budget


def test_short_text_is_untouched() -> None:
    assert budget.fit_text("a\nb", 100) == ("a\nb", None)
    assert budget.fit_lines(["a", "b"], 100) == ("a\nb", None)


def test_fifty_thousand_log_lines_keep_errors_and_the_newest() -> None:
    lines = [
        f"INFO 10-14 03:{i // 60 % 60:02d}:{i % 60:02d} metrics.py:386 Avg prompt throughput: 1.2 tokens/s"
        for i in range(50_000)
    ]
    lines[1234] = (
        "ERROR 10-14 03:20:34 engine.py:99 torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    )
    lines[40_000] = (
        "WARNING 10-14 03:46:40 scheduler.py:1560 Sequence group 42 is preempted by PreemptionMode.RECOMPUTE"
    )
    text, note = budget.fit_lines(lines, 8000)
    assert len(text) <= 8000
    assert "torch.OutOfMemoryError" in text
    assert "preempted" in text
    assert lines[-1] in text  # the newest line is kept
    assert note is not None and "of 50,000 lines" in note
    assert "lines omitted" in text
    # kept lines stay in their original order
    assert text.index("OutOfMemoryError") < text.index("preempted") < text.index(lines[-1])


def test_very_long_lines_are_shortened() -> None:
    text, _ = budget.fit_lines(["x" * 10_000] * 50, 2000)
    assert len(text) <= 2000


def test_tables_keep_the_first_rows_and_count_the_rest() -> None:
    rows = [[f"pod-{i}", "Running", i] for i in range(5000)]
    text, note = budget.fit_table(["POD", "STATUS", "RESTARTS"], rows, 2000, what="pods")
    assert len(text) <= 2000
    assert text.splitlines()[0].split() == ["POD", "STATUS", "RESTARTS"]
    assert "pod-0 " in text and "pod-4999" not in text
    assert note is not None and note.startswith("showing ") and "of 5,000 pods" in note
    shown = int(note.split()[1].replace(",", ""))
    assert f"… and {5000 - shown:,} more pods" in text


def test_label_summary_describes_a_huge_result() -> None:
    series = [
        {"__name__": "DCGM_FI_DEV_GPU_UTIL", "Hostname": f"node-{i // 8}", "gpu": str(i % 8)}
        for i in range(10_000)
    ]
    text = budget.label_summary(series)
    assert text.splitlines()[0] == "10,000 series; labels (distinct values: commonest):"
    assert "  gpu: 8:" in text
    assert "  Hostname: 1,250:" in text
    assert len(text) < 1000
