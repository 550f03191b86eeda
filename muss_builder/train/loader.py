"""``ResumableLoader``: a ``ShardStream`` iterated in DataLoader worker processes (or inline)
with its position kept, so that ``state_dict()`` resumes exactly after the last item handed
out (the protocol is described in ``muss_builder.train.stream``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from muss_builder.train.stream import ShardStream, Tag


class _TaggedView(IterableDataset):
    """What each DataLoader worker runs: its logical worker's tagged stream."""

    def __init__(self, stream: ShardStream, offset: int) -> None:
        self.stream, self.offset = stream, offset

    def __iter__(self) -> Iterator[tuple[Tag, Any]]:
        info = get_worker_info()
        assert info is not None, "_TaggedView runs in DataLoader workers only"
        # this worker's copy counts from zero: the main process adds the workers' counts to
        # what it had before, so a copied count (e.g. skipped_holdout_shards) would be doubled
        self.stream.stats = Counter()
        yield from self.stream.iter_tagged(
            (info.id + self.offset) % info.num_workers, info.num_workers
        )


def _keep(batch: Any) -> Any:
    return batch  # module level: DataLoader workers pickle their collate_fn


class ResumableLoader:
    """Iterate a ShardStream (in DataLoader worker processes or inline) keeping its state.

    Use this instead of a plain DataLoader when a run must resume exactly: ``state_dict()``
    after receiving an item resumes with the item after it. The stream is a cursor: a new
    ``iter()`` after a ``break`` continues where the last one stopped, and a pass that runs
    to its end moves on to the next epoch. Workers are not persistent (each ``iter()`` pickles
    the stream's current epoch and position into fresh workers).
    """

    def __init__(
        self,
        stream: ShardStream,
        num_workers: int = 0,
        *,
        prefetch_factor: int | None = None,
        pin_memory: bool = False,
        multiprocessing_context: str | None = None,
    ) -> None:
        self.stream, self.num_workers = stream, num_workers
        self.prefetch_factor, self.pin_memory = prefetch_factor, pin_memory
        self.multiprocessing_context = multiprocessing_context

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)

    def _tagged(self) -> Iterator[tuple[Tag, Any]]:
        if self.num_workers == 0:
            yield from self.stream.iter_tagged(0, 1)
            return
        loader = DataLoader(
            _TaggedView(self.stream, self.stream.next_worker),
            batch_size=None,
            num_workers=self.num_workers,
            collate_fn=_keep,
            prefetch_factor=self.prefetch_factor,
            pin_memory=self.pin_memory,
            multiprocessing_context=self.multiprocessing_context,
        )
        yield from loader

    def __iter__(self) -> Iterator[Any]:
        self.stream.bind_workers(self.num_workers)
        before, in_workers = Counter(self.stream.stats), {}
        for tag, item in self._tagged():
            self.stream.record(tag)
            if self.num_workers:  # workers count in their own copies: add theirs up here
                in_workers[tag.worker] = tag.stats
                self.stream.stats = before + sum(map(Counter, in_workers.values()), Counter())
            if item is not None:
                yield item
        self.stream.end_epoch()
