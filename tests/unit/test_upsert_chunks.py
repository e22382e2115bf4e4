"""The chunk plan of the upsert: whole stores, bounded chunks, lock requests in ascending order."""

from hypothesis import given
from hypothesis import strategies as st

from pricegroups.upsert import LOCK_BUCKETS, plan_chunks


def test_stores_are_packed_whole_in_bucket_order():
    sizes = [(1, 5), (2, 5), (3, 20), (LOCK_BUCKETS + 1, 1)]
    # store 1025 shares store 1's lock bucket, so it comes right after it
    assert plan_chunks(sizes, 10) == [[1, LOCK_BUCKETS + 1], [2], [3]]


def test_a_store_bigger_than_the_bound_is_a_chunk_of_its_own():
    assert plan_chunks([(1, 3), (2, 50), (3, 3)], 10) == [[1], [2], [3]]


def test_everything_fits_in_one_chunk_under_a_large_bound():
    assert plan_chunks([(s, 100) for s in range(1, 40)], 10**9) == [list(range(1, 40))]


def test_no_rows_no_chunks():
    assert plan_chunks([], 10) == []


@given(
    sizes=st.dictionaries(st.integers(1, 5 * LOCK_BUCKETS), st.integers(1, 40), max_size=60),
    bound=st.integers(1, 100),
)
def test_any_plan_is_whole_bounded_greedy_and_ascending(sizes, bound):
    chunks = plan_chunks(sizes.items(), bound)
    flat = [s for chunk in chunks for s in chunk]
    assert sorted(flat) == sorted(sizes)  # every store exactly once
    for chunk in chunks:
        assert chunk and (len(chunk) == 1 or sum(sizes[s] for s in chunk) <= bound)
    for before, after in zip(chunks, chunks[1:]):  # greedy: the next store did not fit
        assert sum(sizes[s] for s in before) + sizes[after[0]] > bound
    buckets = [s % LOCK_BUCKETS for s in flat]
    assert buckets == sorted(buckets)  # one transaction holding several chunks locks in order
