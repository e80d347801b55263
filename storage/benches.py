"""Benchmark rows: the plan a benchmark was started with, and whether it finished.

The outputs themselves are runs (`Run.bench_id`); this table lets `--resume ID` rebuild the same
plan without the user repeating every option, and tells a finished benchmark from a cut-off one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.tables import Bench, utcnow

BENCH_STATUSES = ("running", "finished", "interrupted")


class BenchExists(Exception):
    """A benchmark with this id was started already."""


class BenchLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, bench: Bench) -> Bench:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(bench)
            try:
                session.commit()
            except IntegrityError:
                raise BenchExists(bench.id) from None
            return bench

    def get(self, bench_id: str) -> Bench | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Bench, bench_id)

    def update(self, bench_id: str, **fields: Any) -> Bench:
        with Session(self.engine, expire_on_commit=False) as session:
            bench = session.get(Bench, bench_id)
            if bench is None:
                raise KeyError(bench_id)
            for key, value in fields.items():
                setattr(bench, key, value)
            session.add(bench)
            session.commit()
            return bench

    def set_status(self, bench_id: str, status: str) -> Bench:
        """`running` again on resume; `finished`/`interrupted` stamp the end time."""
        if status not in BENCH_STATUSES:
            raise ValueError(f"unknown bench status {status!r}")
        finished = None if status == "running" else utcnow()
        return self.update(bench_id, status=status, finished_at=finished)

    def recent(self, limit: int = 20) -> list[Bench]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Bench).order_by(col(Bench.created_at).desc()).limit(limit)
            return list(session.exec(query).all())
