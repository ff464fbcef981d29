"""SQLAlchemy 2 async ORM (``AsyncSession``), aiosqlite on SQLite and asyncpg on PostgreSQL.

Idiomatic 2.0 style: ``select()`` statements built per query, one session per unit of work
(per query for reads, so no identity-map hits flatter repeated reads), ``session.get`` for
primary-key lookups, ORM bulk ``insert(User)`` with a list of dicts for W2,
``selectinload`` chains for eager loading, ``stream_scalars`` with ``yield_per`` for streaming.
SQLite connections get ``common.SQLITE_PRAGMAS`` on connect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import sqlalchemy
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, event, func, insert, \
    select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from common import SQLITE_PRAGMAS, new_user_values, now
from contenders.base import Contender


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str] = mapped_column(String(200))
    city: Mapped[Optional[str]] = mapped_column(String(100))
    age: Mapped[Optional[int]] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    posts: Mapped[list["Post"]] = relationship(back_populates="user")


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    views: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    user: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list["Comment"]] = relationship(back_populates="post")


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    post: Mapped[Post] = relationship(back_populates="comments")


class SQLAlchemyORM(Contender):
    async def open(self) -> None:
        if self.db == "sqlite":
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{self.target}")

            @event.listens_for(self.engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                for key, value in SQLITE_PRAGMAS.items():
                    cur.execute(f"PRAGMA {key} = {value}")
                cur.close()
        else:
            self.engine = create_async_engine(
                self.target.replace("postgresql://", "postgresql+asyncpg://", 1))
        self.Session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        await self.engine.dispose()

    async def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"driver": f"SQLAlchemy {sqlalchemy.__version__}",
                               "engine": self.engine.dialect.driver}
        async with self.engine.connect() as c:
            if self.db == "sqlite":
                out["pragmas"] = {k: (await c.execute(text(f"PRAGMA {k}"))).scalar()
                                  for k in ("journal_mode", "synchronous", "foreign_keys")}
            else:
                out["settings"] = {k: (await c.execute(text(f"SHOW {k}"))).scalar()
                                   for k in ("fsync", "synchronous_commit")}
        return out

    async def execute(self, sql: str) -> int:
        async with self.engine.begin() as c:
            return int((await c.execute(text(sql))).rowcount)

    async def w1(self, tag: str) -> Any:
        ids = []
        async with self.Session() as s:
            for i in range(self.sizes.w1_creates):
                u = User(**new_user_values(tag, i))
                s.add(u)
                await s.commit()
                ids.append(u.id)
        return sum(1 for i in ids if i is not None)

    async def w2(self, tag: str) -> Any:
        # SQLAlchemy's documented bulk path ("ORM bulk INSERT", rows as dicts, no objects or
        # keys back): add_all() of 10,000 objects would need their keys back, which on SQLite
        # SQLAlchemy does one INSERT per row ("ordered; batch not supported"), ~14x slower.
        rows = [new_user_values(tag, i) for i in range(self.sizes.w2_rows)]
        async with self.Session() as s:
            await s.execute(insert(User), rows)
            await s.commit()
        return len(rows)

    async def w3(self) -> Any:
        total = 0
        for _ in range(self.sizes.w3_queries):
            async with self.Session() as s:
                stmt = select(User).where(User.is_active == True).limit(self.sizes.w3_limit)  # noqa: E712
                total += len((await s.scalars(stmt)).all())
        return total

    async def w4(self, pks: list[int]) -> Any:
        total = 0
        Session = self.Session
        for pk in pks:
            async with Session() as s:
                total += (await s.get(User, pk)).id  # type: ignore[union-attr]
        return total

    async def w5(self) -> Any:
        for _ in range(self.sizes.w5_counts):
            async with self.Session() as s:
                n = await s.scalar(select(func.count()).select_from(User).where(
                    User.is_active == True, User.age >= 30))  # noqa: E712
        return n

    async def w6(self) -> Any:
        n = self.sizes.w6_users
        totals = [0, 0, 0]
        for k in range(self.sizes.w6_iterations):
            async with self.Session() as s:
                stmt = select(User).where(User.id > k * n, User.id <= (k + 1) * n).options(
                    selectinload(User.posts).selectinload(Post.comments))
                users = (await s.scalars(stmt)).all()
                totals[0] += len(users)
                for u in users:
                    totals[1] += len(u.posts)
                    for p in u.posts:
                        totals[2] += len(p.comments)
        return totals

    async def w7(self) -> Any:
        for _ in range(self.sizes.w7_queries):
            async with self.Session() as s:
                stmt = select(User.city, func.count(User.id).label("n"),
                              func.avg(User.age).label("avg_age")).group_by(User.city)
                rows = (await s.execute(stmt)).mappings().all()
        return [len(rows), sum(r["n"] for r in rows)]

    async def w8(self) -> Any:
        total = 0
        for _ in range(self.sizes.w8_updates):
            async with self.Session() as s:
                stmt = update(Post).where(Post.status == "draft",
                                          Post.user_id <= self.sizes.w8_max_user) \
                    .values(views=Post.views + 1).execution_options(synchronize_session=False)
                total += (await s.execute(stmt)).rowcount
                await s.commit()
        return total

    async def w9(self) -> Any:
        total = 0
        for _ in range(self.sizes.w9_fetches):
            async with self.Session() as s:
                total += len((await s.scalars(select(User).limit(self.sizes.w9_rows))).all())
        return total

    async def w10(self) -> Any:
        n = 0
        async with self.Session() as s:
            result = await s.stream_scalars(
                select(User).execution_options(yield_per=self.sizes.w10_chunk))
            async for _u in result:
                n += 1
        return n

    async def w11(self, pks: list[int]) -> Any:
        return await self.w4(pks)



