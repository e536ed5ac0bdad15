"""From pair entries to padded token batches: tokenise once, pick negatives per epoch, collate.

Every text is tokenised once up front (with the tokenizer's own special tokens, as the runtime
encodes prompts at generation) and cut to `max_length` tokens, keeping the start: a program's
opening lines say most about its approach. An entry with more inefficient programs than
`--negatives` gets a fresh sample of them each epoch, drawn from a generator keyed by (seed,
epoch, entry), so the draw is the same after a resume and in every process of a distributed run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from greencoder.tuning.pairs import PairEntry


@dataclass(frozen=True)
class TokenizedEntry:
    """Token ids of one entry's anchor, efficient program and inefficient programs."""

    anchor: list[int]
    efficient: list[int]
    inefficient: tuple[list[int], ...]


def tokenize_entries(
    tokenizer, entries: Sequence[PairEntry], anchor_text: Callable[[PairEntry], str], max_length: int
) -> list[TokenizedEntry]:
    """Tokenise all texts of `entries` in one call (fast tokenizers batch it across threads)."""
    if not entries:
        return []
    texts: list[str] = []
    for entry in entries:
        texts.append(anchor_text(entry))
        texts.append(entry.efficient)
        texts.extend(entry.inefficient)
    ids = tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
    tokenized, cursor = [], 0
    for entry in entries:
        count = len(entry.inefficient)
        tokenized.append(TokenizedEntry(list(ids[cursor]), list(ids[cursor + 1]),
                                        tuple(list(i) for i in ids[cursor + 2 : cursor + 2 + count])))
        cursor += 2 + count
    return tokenized


@dataclass(frozen=True)
class Sample:
    """One entry as used in one epoch: its texts with the negatives chosen for that epoch."""

    anchor: list[int]
    efficient: list[int]
    negatives: tuple[list[int], ...]


def choose_negatives(entry: TokenizedEntry, limit: int | None, key: str) -> tuple[list[int], ...]:
    """At most `limit` inefficient programs, a seeded sample when there are more (order kept)."""
    if limit is None or len(entry.inefficient) <= limit:
        return entry.inefficient
    picked = sorted(random.Random(key).sample(range(len(entry.inefficient)), limit))
    return tuple(entry.inefficient[i] for i in picked)


class EpochSamples(torch.utils.data.Dataset):
    """The training entries in one epoch's order, each with that epoch's negatives."""

    def __init__(self, entries: Sequence[TokenizedEntry], order: Sequence[int], negatives: int | None, seed: int, epoch: int):
        self.entries = entries
        self.order = list(order)
        self.negatives = negatives
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int) -> Sample:
        index = self.order[position]
        entry = self.entries[index]
        negatives = choose_negatives(entry, self.negatives, f"{self.seed}:{self.epoch}:{index}")
        return Sample(entry.anchor, entry.efficient, negatives)


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    """The shuffled entry order of `epoch`: a function of (seed, epoch) only, so a resumed run and
    an uninterrupted one see the same batches."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(count, generator=generator).tolist()


class Collator:
    """Pads a list of samples into one right-padded batch: anchors, then positives, then negatives."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
        texts = [s.anchor for s in samples] + [s.efficient for s in samples]
        owners: list[int] = []
        for row, sample in enumerate(samples):
            texts.extend(sample.negatives)
            owners.extend([row] * len(sample.negatives))
        width = max(len(t) for t in texts)
        input_ids = torch.full((len(texts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(texts), width), dtype=torch.long)
        for row, ids in enumerate(texts):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "negative_owner": torch.tensor(owners, dtype=torch.long),
            "anchor_count": torch.tensor(len(samples), dtype=torch.long),
        }


def split_embeddings(embeddings: torch.Tensor, anchor_count: int):
    """(anchors, positives, negatives) blocks of a batch's embeddings, in Collator order."""
    return embeddings[:anchor_count], embeddings[anchor_count : 2 * anchor_count], embeddings[2 * anchor_count :]
