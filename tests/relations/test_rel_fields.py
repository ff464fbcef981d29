"""Relation fields: on_delete on both databases, join tables, string targets, abstract bases,
custom tables/columns, self references, explicit through models and cascades."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from models_rel import (
    BLOG,
    ON_DELETE_CHILDREN,
    SOCIAL,
    Book,
    CascadeChild,
    Category,
    City,
    Club,
    Comment,
    Country,
    DoNothingChild,
    Gadget,
    GuideCascadeChild,
    Membership,
    Owner,
    Person,
    Post,
    Profile,
    ProtectChild,
    RestrictChild,
    Review,
    SetDefaultChild,
    SetNullChild,
    Tag,
    User,
    m2m,
    names,
    seed,
)

from covet.database import (
    ConfigurationError,
    IntegrityError,
    ValidationError,
    create_tables,
)
from covet.database.orm import Model
from covet.database.orm import relationships as rels
from covet.database.orm.fields import CharField
from covet.database.orm.options import registry
from covet.database.orm.relationships import (
    CASCADE,
    SET_DEFAULT,
    SET_NULL,
    ForeignKey,
    ManyToManyField,
)
from covet.database.orm.sql.ddl import index_name


@pytest.fixture
def scratch() -> Iterator[None]:
    """Forget the models a test defines (and their unresolved references) afterwards."""
    before = set(registry)
    yield
    for model in list(registry):
        if model not in before:
            registry.unregister(model)
    alive = set(registry)
    rels._pending[:] = [p for p in rels._pending if p[1] in alive]


async def index_names(db: Any, table: str) -> set[str]:
    if db.dialect == "sqlite":
        rows = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                              "tbl_name = $1", [table])
        return {r["name"] for r in rows}
    rows = await db.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", [table])
    return {r["indexname"] for r in rows}


# -- on_delete ------------------------------------------------------------------------------------
ON_DELETE_CASES = [  # child model, what happens to the child when its owner is deleted
    (CascadeChild, "deleted"),
    (GuideCascadeChild, "deleted"),
    (SetNullChild, "null"),
    (SetDefaultChild, "default"),
    (ProtectChild, "refused"),
    (RestrictChild, "refused"),
    (DoNothingChild, "refused"),
]


@pytest.mark.parametrize("how", ["instance", "queryset"])
@pytest.mark.parametrize(("child_model", "outcome"), ON_DELETE_CASES,
                         ids=[c.__name__ for c, _ in ON_DELETE_CASES])
async def test_on_delete(db: Any, child_model: Any, outcome: str, how: str) -> None:
    await create_tables(Owner, *ON_DELETE_CHILDREN)
    keeper = await Owner.create(name="keeper")
    assert keeper.id == 1  # SetDefaultChild's default
    victim = await Owner.create(name="victim")
    child = await child_model.create(owner=victim)
    other = await child_model.create(owner=keeper)

    async def delete() -> Any:
        if how == "instance":
            return await victim.delete()
        return await Owner.objects.filter(name="victim").delete()

    if outcome == "refused":
        with pytest.raises(IntegrityError):
            await delete()
        assert await Owner.objects.filter(pk=victim.pk).exists()
        assert (await child_model.objects.get(pk=child.pk)).owner_id == victim.id
    else:
        assert await delete() == 1
        assert not await Owner.objects.filter(pk=victim.pk).exists()
        remaining = {c.pk: c.owner_id for c in await child_model.objects.all()}
        expected = {"deleted": {other.pk: keeper.id},
                    "null": {child.pk: None, other.pk: keeper.id},
                    "default": {child.pk: keeper.id, other.pk: keeper.id}}[outcome]
        assert remaining == expected
    assert (await child_model.objects.get(pk=other.pk)).owner_id == keeper.id


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"on_delete": "EXPLODE"}, "on_delete"),
    ({"on_delete": SET_NULL}, "nullable"),
    ({"on_delete": SET_DEFAULT}, "default"),
])
def test_on_delete_misconfigured(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        ForeignKey(Owner, **kwargs)


def test_on_delete_constants_are_the_guide_strings() -> None:
    assert {c.__name__: c._meta.fields_map["owner"].on_delete for c in ON_DELETE_CHILDREN} == {
        "CascadeChild": "CASCADE", "GuideCascadeChild": "CASCADE", "SetNullChild": "SET_NULL",
        "SetDefaultChild": "SET_DEFAULT", "ProtectChild": "PROTECT", "RestrictChild": "RESTRICT",
        "DoNothingChild": "DO_NOTHING"}


# -- columns, indexes, integrity ------------------------------------------------------------------
async def test_foreign_key_columns_and_indexes(db: Any) -> None:
    await create_tables(*BLOG)
    post_indexes = await index_names(db, "rel_posts")
    assert index_name("rel_posts", ["author_id"], "idx") in post_indexes
    assert index_name("rel_posts", ["editor_id"], "idx") in post_indexes
    assert index_name("rel_reviews", ["reviewer_uid"], "idx") in await index_names(db, "rel_reviews")
    # A OneToOneField is unique (its own unique index), and two profiles for one user fail.
    user = await User.create(username="u")
    await Profile.create(user=user)
    with pytest.raises(IntegrityError):
        await Profile.create(user=user)


async def test_foreign_key_db_index_false(db: Any, scratch: None) -> None:
    class Plain(Model):
        owner = ForeignKey(Owner, on_delete=CASCADE, db_index=False)

        class Meta:
            db_table = "rel_plain_children"

    await create_tables(Owner, Plain)
    assert index_name("rel_plain_children", ["owner_id"], "idx") not in await index_names(
        db, "rel_plain_children")


async def test_foreign_key_integrity(db: Any) -> None:
    await create_tables(*BLOG)
    with pytest.raises(IntegrityError):
        await Post.create(title="orphan", author_id=999)
    with pytest.raises(ValidationError):  # not nullable: refused before any SQL
        await Post.create(title="anonymous", author=None)
    user = await User.create(username="u")
    post = await Post.create(title="t", author=user, editor=None)
    assert (await Post.objects.get(pk=post.pk)).editor_id is None
    assert await Post.objects.count() == 1


async def test_many_to_many_join_table_is_created(db: Any) -> None:
    await create_tables(Country, City, User, Post, Tag)  # the join tables are not listed
    through = m2m(Post, "tags").through_model
    assert through._meta.db_table == "rel_posts_tags"
    assert {f.name for f in through._meta.fields} == {"id", "post", "tag"}
    user = await User.create(username="u")
    post = await Post.create(title="t", author=user)
    tag = await Tag.create(name="x")
    await through(post_id=post.id, tag_id=tag.id).save()
    assert await through.objects.count() == 1
    with pytest.raises(IntegrityError):  # the pair is unique
        await through(post_id=post.id, tag_id=tag.id).save()
    with pytest.raises(IntegrityError):  # and both sides are foreign keys
        await through(post_id=post.id, tag_id=999).save()


# -- string targets -------------------------------------------------------------------------------
def test_string_targets_resolve() -> None:
    assert Post._meta.relations["tags"].target is Tag  # 'Tag', defined after Post
    assert Post._meta.relations["editor"].target is User  # 'User'
    assert Review._meta.relations["post"].target is Post  # 'models_rel.Post'
    assert Category._meta.relations["parent"].target is Category  # 'self'
    assert Club._meta.relations["members"].target is Person
    assert m2m(Club, "members").through_model is Membership  # through='Membership'


async def test_app_dot_name_targets(db: Any, scratch: None) -> None:
    """'app.Model' names a model by a suffix of its module (``shopapp.models`` -> 'shopapp')."""

    class Order(Model):
        __module__ = "billing.models"
        gizmo = ForeignKey("shopapp.Gizmo", on_delete=CASCADE, related_name="orders")
        extras = ManyToManyField("shopapp.Gizmo", related_name="extra_orders")

        class Meta:
            db_table = "rel_billing_orders"

    class Gizmo(Model):  # defined after the reference: resolved lazily
        __module__ = "shopapp.models"
        name = CharField(max_length=20)

        class Meta:
            db_table = "rel_shop_gizmos"

    assert Order._meta.relations["gizmo"].target is Gizmo
    await create_tables(Gizmo, Order)
    g = await Gizmo.create(name="g")
    order = await Order.create(gizmo=g)
    await order.extras.add(g)
    assert [o.pk for o in await Order.objects.filter(gizmo__name="g", extras__name="g")] == [1]
    assert [o.pk for o in await g.orders.all()] == [order.pk]
    assert [o.pk for o in await g.extra_orders.all()] == [order.pk]


@pytest.mark.parametrize("step", ["create_tables", "filter", "order_by", "select_related"])
@pytest.mark.parametrize("kind", ["fk", "m2m"])
async def test_unresolved_target_is_a_clear_error(db: Any, scratch: None, kind: str,
                                                  step: str) -> None:
    class Haunted(Model):
        name = CharField(max_length=20)
        if kind == "fk":
            ghost = ForeignKey("Ghost", on_delete=CASCADE)
        else:
            ghosts = ManyToManyField("Ghost")

        class Meta:
            db_table = "rel_haunted"

    rel = "ghost" if kind == "fk" else "ghosts"
    run = {
        "create_tables": lambda: create_tables(Haunted),
        "filter": lambda: Haunted.objects.filter(**{f"{rel}__name": "boo"}),
        "order_by": lambda: Haunted.objects.order_by(f"{rel}__name"),
        "select_related": lambda: Haunted.objects.select_related(rel),
    }[step]
    with pytest.raises(ConfigurationError, match="'Ghost'"):
        await run()


# -- abstract bases, custom tables and columns ----------------------------------------------------
async def test_abstract_base_foreign_key(db: Any) -> None:
    await create_tables(*BLOG, Book, Gadget)
    assert (Book._meta.db_table, Gadget._meta.db_table) == ("rel_books", "rel_gadgets")
    ann = await User.create(username="ann")
    ben = await User.create(username="ben")
    await Book.create(name="dune", owner=ann)
    await Book.create(name="emma", owner=ben)
    await Gadget.create(name="lamp", owner=ann)
    assert names(await ann.book_items.all(), "name") == ["dune"]
    assert names(await ann.gadget_items.all(), "name") == ["lamp"]
    assert await ben.gadget_items.count() == 0
    assert names(await User.objects.filter(book_items__name="emma")) == ["ben"]
    assert names(await User.objects.filter(gadget_items__isnull=False)) == ["ann"]
    users = await User.objects.prefetch_related("book_items", "gadget_items").order_by("id")
    assert [(len(u.book_items), len(u.gadget_items)) for u in users] == [(1, 1), (1, 0)]
    book = await Book.objects.select_related("owner").get(name="emma")
    assert book.owner.username == "ben"


async def test_abstract_base_many_to_many_and_self(db: Any, scratch: None) -> None:
    class Label(Model):
        text = CharField(max_length=20)

        class Meta:
            db_table = "rel_labels"

    class Labelled(Model):
        title = CharField(max_length=20)
        labels = ManyToManyField(Label, related_name="%(class)s_set")
        parent = ForeignKey("self", on_delete=CASCADE, nullable=True,
                            related_name="%(class)s_children")

        class Meta:
            abstract = True

    class Photo(Labelled):
        class Meta:
            db_table = "rel_photos"

    class Video(Labelled):
        class Meta:
            db_table = "rel_videos"

    assert Photo._meta.relations["parent"].target is Photo
    assert Video._meta.relations["parent"].target is Video
    await create_tables(Label, Photo, Video)
    red = await Label.create(text="red")
    top = await Photo.create(title="top")
    sub = await Photo.create(title="sub", parent=top)
    clip = await Video.create(title="clip")
    await sub.labels.add(red)
    await clip.labels.add(red)
    assert names(await red.photo_set.all(), "title") == ["sub"]
    assert names(await red.video_set.all(), "title") == ["clip"]
    assert names(await top.photo_children.all(), "title") == ["sub"]


async def test_db_column_foreign_key(db: Any) -> None:
    objs = await seed()
    review = await Review.create(reviewer=objs["bob"], post=objs["a1"], score=4)
    assert review.reviewer_id == objs["bob"].id
    fresh = await Review.objects.select_related("reviewer", "post__author").get(pk=review.pk)
    assert (fresh.reviewer.username, fresh.post.author.username) == ("bob", "alice")
    assert names(await User.objects.filter(reviews__score__gte=4)) == ["bob"]
    assert names(await objs["bob"].reviews.all(), "score") == [4]
    bob = await User.objects.prefetch_related("reviews").get(username="bob")
    assert names(bob.reviews, "score") == [4]


async def test_string_primary_key_target(db: Any) -> None:
    objs = await seed()
    lisbon = await City.objects.select_related("country").get(name="Lisbon")
    assert lisbon.country_id == "PT" and lisbon.country.name == "Portugal"
    countries = await Country.objects.prefetch_related("cities").order_by("code")
    assert [(c.code, sorted(names(c.cities, "name"))) for c in countries] == [
        ("DE", ["Berlin"]), ("FR", []), ("PT", ["Lisbon", "Porto"])]
    assert names(await Country.objects.filter(cities__residents__username="bob"), "code") == ["PT"]
    await objs["PT"].delete()  # CASCADE to the cities, SET_NULL on the users' hometown
    assert sorted(names(await City.objects.all(), "name")) == [
        "Atlantis", "Berlin"]
    assert (await User.objects.get(username="alice")).hometown_id is None


# -- self references and through models -----------------------------------------------------------
async def test_self_foreign_key_tree(db: Any) -> None:
    await create_tables(*SOCIAL)
    root = await Category.create(name="root")
    kid = await Category.create(name="kid", parent=root)
    await Category.create(name="kid2", parent=root)
    grand = await Category.create(name="grand", parent=kid)
    assert sorted(names(await root.children.all(), "name")) == ["kid", "kid2"]
    assert names(await Category.objects.filter(parent__parent__name="root"), "name") == ["grand"]
    assert names(await Category.objects.filter(parent__isnull=True), "name") == ["root"]
    with_kids = Category.objects.filter(children__isnull=False).distinct().order_by("name")
    assert names(await with_kids, "name") == ["kid", "root"]
    g = await Category.objects.select_related("parent__parent").get(pk=grand.pk)
    assert (g.parent.name, g.parent.parent.name, g.parent.parent.parent) == ("kid", "root", None)
    tree = await Category.objects.prefetch_related("children__children").get(pk=root.pk)
    assert sorted((c.name, names(c.children, "name")) for c in tree.children) == [
        ("kid", ["grand"]), ("kid2", [])]
    await root.delete()  # two levels of CASCADE
    assert await Category.objects.count() == 0


async def test_self_many_to_many_directional(db: Any) -> None:
    await create_tables(*SOCIAL)
    ann, ben, cid = [await Person.create(name=n) for n in ("ann", "ben", "cid")]
    await ann.follows.add(ben, cid)
    await ben.follows.add(cid)
    assert sorted(names(await ann.follows.all(), "name")) == ["ben", "cid"]
    assert sorted(names(await cid.followers.all(), "name")) == ["ann", "ben"]
    assert names(await ann.followers.all(), "name") == []
    assert names(await Person.objects.filter(followers__name="ben"), "name") == ["cid"]
    people = await Person.objects.prefetch_related("follows", "followers").order_by("name")
    assert [(len(p.follows), len(p.followers)) for p in people] == [(2, 0), (1, 1), (0, 2)]
    await ben.delete()  # the join rows go with either side
    assert names(await ann.follows.all(), "name") == ["cid"]
    assert names(await cid.followers.all(), "name") == ["ann"]


async def test_self_many_to_many_friends_is_symmetrical(db: Any) -> None:
    """Django's default for ManyToManyField('self') is symmetrical: befriending works both ways."""
    await create_tables(*SOCIAL)
    ann, ben = await Person.create(name="ann"), await Person.create(name="ben")
    await ann.friends.add(ben)
    assert names(await ann.friends.all(), "name") == ["ben"]
    assert names(await ben.friends.all(), "name") == ["ann"]
    await ben.friends.remove(ann)
    assert await ann.friends.count() == 0


async def test_explicit_through_model(db: Any) -> None:
    await create_tables(*SOCIAL)
    ann, ben = await Person.create(name="ann"), await Person.create(name="ben")
    chess, go = await Club.create(name="chess"), await Club.create(name="go")
    await Membership.create(person=ann, club=chess, role="admin")
    await Membership.create(person=ben, club=chess)
    await Membership.create(person=ben, club=go, role="admin")
    assert sorted(names(await chess.members.all(), "name")) == ["ann", "ben"]
    assert sorted(names(await ben.clubs.all(), "name")) == ["chess", "go"]
    admins = Person.objects.filter(memberships__role="admin", memberships__club__name="chess")
    assert names(await admins, "name") == ["ann"]
    assert names(await Club.objects.filter(members__name="ann"), "name") == ["chess"]
    clubs = await Club.objects.prefetch_related("members").order_by("name")
    assert [sorted(names(c.members, "name")) for c in clubs] == [["ann", "ben"], ["ben"]]
    await go.members.add(ann)  # the through model's other fields take their defaults
    assert (await Membership.objects.get(person=ann, club=go)).role == "member"
    await chess.delete()
    assert await Membership.objects.count() == 2
    assert names(await ann.clubs.all(), "name") == ["go"]


# -- cascades -------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["instance", "queryset"])
async def test_cascade_two_levels(db: Any, how: str) -> None:
    objs = await seed()
    through = m2m(Post, "tags").through_model
    before = await through.objects.count()
    if how == "instance":
        await objs["alice"].delete()
    else:
        await User.objects.filter(username="alice").delete()
    assert await Post.objects.filter(author__username="alice").count() == 0
    assert await Post.objects.count() == 4
    # a1/a2 and their comments went (4 comments on alice's posts, and alice's own comments on
    # b1 and d1), and the join rows of a1 and a2 (3 of them).
    assert await Comment.objects.count() == 8 - 4 - 2
    assert await through.objects.count() == before - 3
    assert await Profile.objects.filter(user_id=objs["alice"].id).count() == 0
    assert await Tag.objects.count() == 4  # the other side of a many-to-many stays
    assert (await Post.objects.get(title="b1")).editor_id is None  # SET_NULL


@pytest.mark.parametrize("side", ["post", "tag", "tag_queryset"])
async def test_join_rows_go_with_either_side(db: Any, side: str) -> None:
    objs = await seed()
    through = m2m(Post, "tags").through_model
    if side == "post":
        await objs["b2"].delete()
        assert await through.objects.filter(post_id=objs["b2"].id).count() == 0
        assert await through.objects.count() == 8 - 3
        assert await Tag.objects.count() == 4
    else:
        if side == "tag":
            await objs["python"].delete()
        else:
            await Tag.objects.filter(name="python").delete()
        assert await through.objects.count() == 8 - 3
        assert names(await objs["b2"].tags.all().order_by("name"), "name") == ["rust", "sql"]
        assert await Post.objects.count() == 7


# -- declarations Django refuses or handles specially ---------------------------------------------
async def test_reverse_accessor_clash_is_refused(scratch: None) -> None:
    """Django (fields.E304): two ForeignKeys to one model need distinct related_names."""

    class Shop(Model):
        name = CharField(max_length=20)

        class Meta:
            db_table = "rel_shops"

    with pytest.raises(ConfigurationError, match="shop"):
        class Transfer(Model):
            source = ForeignKey(Shop, on_delete=CASCADE)
            target = ForeignKey(Shop, on_delete=CASCADE)

            class Meta:
                db_table = "rel_transfers"


async def test_related_name_plus_and_field_clash(db: Any, scratch: None) -> None:
    class Shop(Model):
        name = CharField(max_length=20)

        class Meta:
            db_table = "rel_shops"

    class Sale(Model):
        shop = ForeignKey(Shop, on_delete=CASCADE, related_name="+")

        class Meta:
            db_table = "rel_sales"

    assert "sale_set" not in Shop._meta.relations and not hasattr(Shop, "sale_set")
    await create_tables(Shop, Sale)
    shop = await Shop.create(name="s")
    await Sale.create(shop=shop)
    assert [s.shop_id for s in await Sale.objects.filter(shop__name="s")] == [shop.id]
    with pytest.raises(ConfigurationError, match="related_name"):
        class Refund(Model):
            shop = ForeignKey(Shop, on_delete=CASCADE, related_name="name")

            class Meta:
                db_table = "rel_refunds"


async def test_create_tables_with_a_reference_cycle(db: Any, scratch: None) -> None:
    class Team(Model):
        name = CharField(max_length=20)
        captain = ForeignKey("Player", on_delete=SET_NULL, nullable=True, related_name="+")

        class Meta:
            db_table = "rel_teams"

    class Player(Model):
        name = CharField(max_length=20)
        team = ForeignKey(Team, on_delete=CASCADE, nullable=True, related_name="players")

        class Meta:
            db_table = "rel_players"

    await create_tables(Team, Player)
    team = await Team.create(name="t")
    cap = await Player.create(name="cap", team=team)
    team.captain = cap
    await team.save()
    got = await Team.objects.select_related("captain").get(pk=team.pk)
    assert got.captain.name == "cap"
    with pytest.raises(IntegrityError):  # both constraints exist
        await Team.create(name="u", captain_id=999)
    await cap.delete()
    assert (await Team.objects.get(pk=team.pk)).captain_id is None
    # Running it again leaves the existing tables, and their keys, alone.
    await create_tables(Team, Player)
    if db.dialect == "postgresql":
        rows = await db.fetch(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid IN ('rel_teams'::regclass, 'rel_players'::regclass)")
        assert rows[0]["count"] == 2


async def test_one_to_one_primary_key(db: Any, scratch: None) -> None:
    """Django's 'extension table' pattern: the one-to-one is the primary key and still a
    foreign key (CASCADE) to its target."""

    class Settings(Model):
        user = rels.OneToOneField(User, on_delete=CASCADE, primary_key=True,
                                  related_name="settings")
        theme = CharField(max_length=10, default="dark")

        class Meta:
            db_table = "rel_settings"

    await create_tables(*BLOG, Settings)
    ann = await User.create(username="ann")
    await Settings.create(user=ann, theme="light")
    assert (await Settings.objects.get(pk=ann.id)).theme == "light"
    assert (await ann.settings).theme == "light"
    with pytest.raises(IntegrityError):
        await Settings.create(user_id=999)
    await ann.delete()
    assert await Settings.objects.count() == 0


async def test_self_foreign_key_aggregates_and_exclude(db: Any) -> None:
    from covet.database.orm.aggregates import Count

    await create_tables(*SOCIAL)
    root = await Category.create(name="root")
    kid = await Category.create(name="kid", parent=root)
    await Category.create(name="kid2", parent=root)
    await Category.create(name="grand", parent=kid)
    counts = await Category.objects.annotate(n=Count("children"),
                                             g=Count("children__children")).order_by("id")
    assert [(c.name, c.n, c.g) for c in counts] == [
        ("root", 2, 1), ("kid", 1, 0), ("kid2", 0, 0), ("grand", 0, 0)]
    assert names(await Category.objects.filter(children__children__name="grand"), "name") == [
        "root"]
    rows = await Category.objects.values("parent__name").annotate(n=Count("id"))
    assert {r["parent__name"]: r["n"] for r in rows} == {None: 1, "root": 2, "kid": 1}
    assert sorted(names(await Category.objects.exclude(children__name="grand"), "name")) == [
        "grand", "kid2", "root"]

