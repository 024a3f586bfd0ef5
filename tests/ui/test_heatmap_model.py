"""The heatmap's pure model: a known sequence of books draws known cells; the buffer stays bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lobterm.widgets.heatmap_model import (
    MARK_BUY,
    MARK_FILL,
    MARK_NONE,
    MARK_SELL,
    HeatmapModel,
    cell_parts,
    quantize,
)


def _cells(
    model: HeatmapModel, top: int, tpr: int, rows: int, cells: int
) -> list[list[tuple[int, int, int]]]:
    grid, _top = model.grid(top, tpr, rows, cells)
    return [[cell_parts(c) for c in row] for row in grid]


def test_quantize_is_log_scale() -> None:
    assert quantize(0) == 0
    assert quantize(1) == 1
    assert quantize(2) == 9
    assert quantize(16) == 33
    assert quantize(256) == 65
    assert quantize(10**30) == 255


def test_known_books_draw_known_cells() -> None:
    model = HeatmapModel(4 / 60, sample_s=1.0, levels=16)  # 4 samples
    assert model.capacity == 4
    model.record(0.0, 100, [(100, 1), (101, 16)])
    model.record(1.5, 100, [(100, 1), (102, 256)], marks=[(101, MARK_BUY)])
    # rows 103, 102, 101, 100; two cells = four steps of one sample, the two newest in the right cell
    cells = _cells(model, 103, 1, 4, 2)
    empty = (0, 0, MARK_NONE)
    assert [row[0] for row in cells] == [empty] * 4
    assert [row[1] for row in cells] == [
        (0, 0, MARK_NONE),  # 103: nothing
        (0, 8, MARK_NONE),  # 102: 256 lots arrived (the largest on screen)
        (5, 0, MARK_BUY),  # 101: 16 lots, gone, and a buy traded there
        (1, 1, MARK_NONE),  # 100: 1 lot both times
    ]


def test_same_sample_keeps_latest_book_and_every_mark() -> None:
    model = HeatmapModel(4 / 60, sample_s=1.0, levels=16)
    model.record(0.1, 100, [(100, 256)], marks=[(100, MARK_SELL)])
    model.record(0.2, 100, [(101, 256)], marks=[(101, MARK_FILL)])
    cells = _cells(model, 101, 1, 2, 1)
    assert cells == [[(0, 8, MARK_FILL)], [(0, 0, MARK_SELL)]]


def test_zoomed_rows_take_the_largest_size_of_their_ticks() -> None:
    model = HeatmapModel(4 / 60, sample_s=1.0, levels=32)
    model.record(0.0, 100, [(98, 1), (99, 256), (100, 16), (101, 1)])
    # 2 ticks a row from 101: rows [100, 101], [98, 99]
    cells = _cells(model, 101, 2, 2, 1)
    assert cells == [[(0, 5, MARK_NONE)], [(0, 8, MARK_NONE)]]


def test_follows_the_axis_and_gaps_carry_the_book_forward() -> None:
    model = HeatmapModel(4 / 60, sample_s=1.0, levels=16)
    model.record(0.0, 100, [(100, 4)])
    model.record(3.0, 100, [(100, 4)])  # samples 1 and 2 carry sample 0's book
    assert [c[1] for c in _cells(model, 100, 1, 1, 2)[0]] == [8, 8]
    assert [c[0] for c in _cells(model, 100, 1, 1, 2)[0]] == [8, 8]
    # the axis moved up a row: the same price is now on the second row
    cells = _cells(model, 101, 1, 2, 2)
    assert cells[0] == [(0, 0, 0), (0, 0, 0)] and cells[1] == [(8, 8, 0), (8, 8, 0)]


def test_a_long_gap_is_left_empty() -> None:
    model = HeatmapModel(2.0, sample_s=1.0, levels=16)  # 120 samples, 2 a cell on 30 cells
    model.record(0.0, 100, [(100, 4)])
    model.record(100.0, 100, [(100, 4)])  # a seek forward: the 99 samples between are unknown
    row = _cells(model, 100, 1, 1, 60)[0]
    assert row[-1][1] == 8 and row[-1][0] == 0  # sample 99 empty, sample 100 the book
    # 120 steps from sample -19: sample 0 is the right half of cell 9; sample 1 (unknown) is empty
    assert row[9][1] == 8 and row[10][0] == 0


def test_ring_wraps_and_a_seek_back_clears() -> None:
    model = HeatmapModel(4 / 60, sample_s=1.0, levels=16)
    for t in range(10):
        model.record(float(t), 100, [(100, 1 << t)])
    # the four newest samples: 64, 128, 256, 512 lots; 512 is the max
    row = _cells(model, 100, 1, 1, 2)[0]
    # log sizes 49, 57, 65, 73 against 73: shades ceil(q * 8 / 73)
    assert [c[:2] for c in row] == [(6, 7), (8, 8)]
    nbytes = model.nbytes
    model.record(2.0, 100, [(100, 1)])  # back in time: a replay's seek
    assert model.first == 2 and model.nbytes == nbytes
    assert _cells(model, 100, 1, 1, 2)[0][1] == (0, 8, MARK_NONE)


def test_strip_spans_the_whole_buffer() -> None:
    model = HeatmapModel(1.0, sample_s=0.25)  # 240 samples
    assert model.samples_per_step(30) == 4
    assert model.nbytes == 240 * 512 + 240 * 8 + 240 * 4 * 8 + 240 * 4


@given(
    st.lists(
        st.tuples(
            st.floats(0, 100, allow_nan=False),
            st.integers(-5, 300),
            st.lists(st.tuples(st.integers(-5, 300), st.integers(-(10**9), 10**12)), max_size=20),
            st.lists(st.tuples(st.integers(-5, 300), st.sampled_from([1, 2, 3])), max_size=6),
        ),
        max_size=30,
    ),
    st.integers(1, 300),
    st.integers(1, 7),
    st.integers(0, 30),
    st.integers(0, 12),
)
def test_any_input_draws_a_bounded_grid(samples, top, tpr, rows, cells) -> None:
    model = HeatmapModel(0.2, sample_s=1.0, levels=64)
    nbytes = model.nbytes
    for t, center, levels, marks in samples:
        model.record(t, center if center > 0 else None, levels, marks)
    grid, _ = model.grid(top, tpr, rows, cells)
    assert model.nbytes == nbytes
    assert len(grid) == (rows if cells else 0)
    for row in grid:
        assert len(row) == cells
        for code in row:
            older, newer, mark = cell_parts(code)
            assert 0 <= older < 9 and 0 <= newer < 9 and 0 <= mark <= 3
