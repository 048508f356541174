"""What a chaos run reports: its figures and each invariant, passed or broken."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Invariant(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    detail: str


class ChaosReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    seed: int
    posts: int
    workflow_type: str = "STANDARD"
    seconds: float
    published: int
    published_by_producer: int
    duplicate_deliveries: int
    republished_after_crash: int
    done: int
    duplicates: int
    dead_letters: dict[str, int]
    # Workflow dead letters whose image was classified since (a later post of the photo):
    # obsolete, `tweetlens dlq redrive` keeps them unless forced (``tweetlens.dlq``).
    superseded_letters: int = 0
    # Letters sent again for the same execution or route message (``tweetlens.dlq.mark_copies``):
    # recognised copies, each counted once with its first letter, deleted by a redrive.
    letter_copies: int = 0
    # Messages with two ends (``Settlement.double_counted``), copies excluded: 0 in a sound run.
    counted_twice: int = 0
    # The producer's letters by error (UnreadablePage, RejectedBySqs, ...).
    producer_letters: dict[str, int] = Field(default_factory=dict)
    lost: int
    in_progress: int
    labelled_twice: int
    labelled_twice_executions: dict[str, list[str]] = Field(default_factory=dict)
    unique_urls: int
    rekognition_calls: int
    rekognition_throttled: int
    # Of them, while another caller of the account held the whole quota (STANDARD).
    rekognition_throttled_by_neighbour: int = 0
    # STANDARD: the DetectLabelsRate deployed (None: the template's default), and the start
    # limiter's writes to its window counters, refused ones (a start held back) apart.
    detect_labels_rate: int | None = None
    start_limiter_writes: int = 0
    start_limiter_refused: int = 0
    dynamodb_throttled: int
    producer_runs: int
    producer_crashes: int
    workers_killed: dict[str, int]
    adopted_executions: int
    executions_aborted: int
    executions_timed_out: int
    dead_letters_refused: int
    poison_pages: int = 0
    send_entries_failed_transiently: int = 0
    send_entries_refused: int = 0
    # URL → its final state, where it differs from the state its fault was designed to give.
    unexpected_outcomes: dict[str, str]
    invariants: list[Invariant]

    @property
    def ok(self) -> bool:
        return all(invariant.ok for invariant in self.invariants)
