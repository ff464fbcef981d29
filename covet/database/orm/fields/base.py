"""The ``Field`` base class: a typed descriptor that validates, converts and describes a column.

Barrier: a field knows one column — its Python type, how to validate a value, how the value
travels to and from each dialect's driver, and its column type per dialect. It knows nothing of
queries or connections.

Values live in the instance ``__dict__`` under the field's attribute name, so reading
``user.username`` is a plain attribute lookup; the descriptor's ``__get__`` only runs for a field
that was never set (deferred by ``only()``-style loading or a model built with ``__new__``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from covet.database.exceptions import ValidationError

if TYPE_CHECKING:
    from typing import Self

    from covet.database.orm.models import Model

__all__ = ["Field", "NOT_PROVIDED", "Converter", "native_converter", "NATIVE_SPEC"]

T = TypeVar("T")
Converter = Callable[[Any], Any]

#: the attribute under which ``native_converter`` records a converter's description.
NATIVE_SPEC = "__covet_native__"


def native_converter(kind: str, extra: Any = None) -> Callable[[Converter], Converter]:
    """Describe a ``from_db_converter`` to the Rust row decoder (``covet/database/orm/hydrate.py``).

    The description sits on the converter itself, so it cannot drift from the function it
    describes. The decoder converts natively only the values it reads with certainty (an exact
    ``str`` for the text forms) and calls the converter for every other value, so the two must
    agree exactly on those values; ``tests/test_decode.py`` checks that they do.

    Args:
        kind: ``'bool'``, ``'decimal'``, ``'datetime'``, ``'date'``, ``'time'``, ``'uuid'`` or
            ``'json'``.
        extra: what the kind needs: ``(quantum, context)`` for a decimal, ``(UUID class,
            SafeUUID.unknown)`` for a UUID, the ``loads`` function for JSON.
    """

    def describe(convert: Converter) -> Converter:
        setattr(convert, NATIVE_SPEC, (kind, extra))
        return convert

    return describe


class _NotProvided:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_PROVIDED"


NOT_PROVIDED: Any = _NotProvided()


class Field(Generic[T]):
    """A model field.

    Args:
        primary_key: this field is the table's primary key (no automatic ``id`` is added).
        nullable: the column accepts NULL (``None``); the default is ``False``.
        unique: a UNIQUE constraint.
        db_index: an index on the column.
        default: a value, or a callable called for each new instance.
        choices: allowed values, as ``[value, ...]`` or ``[(value, label), ...]``.
        db_column: the column name when it differs from the attribute name.
        validators: callables that raise ``ValidationError`` (or ``ValueError``) on a bad value.
    """

    #: column type per dialect; ``{max_length}`` style placeholders are filled by ``db_type``.
    db_types: ClassVar[dict[str, str]] = {}
    #: a short name for the shell's ``%covet_models`` and error messages.
    type_label: ClassVar[str] = "value"
    is_relation: ClassVar[bool] = False
    auto_created: bool = False

    name: str
    attname: str
    column: str
    model: type[Model]

    def __init__(
        self,
        *,
        primary_key: bool = False,
        nullable: bool = False,
        unique: bool = False,
        db_index: bool = False,
        default: Any = NOT_PROVIDED,
        choices: Iterable[Any] | None = None,
        db_column: str | None = None,
        validators: Sequence[Callable[[Any], Any]] = (),
        verbose_name: str | None = None,
        help_text: str = "",
    ) -> None:
        self.primary_key = primary_key
        self.nullable = nullable
        self.unique = unique or primary_key
        self.db_index = db_index
        self.default = default
        self.choices = _normalize_choices(choices)
        self.db_column = db_column
        self.validators = list(validators)
        self.verbose_name = verbose_name
        self.help_text = help_text

    # model wiring -----------------------------------------------------------------------
    def contribute_to_class(self, model: type[Model], name: str) -> None:
        self.name = name
        self.attname = name
        self.column = self.db_column or name
        self.model = model

    def clone(self) -> Self:
        """A fresh copy for a subclass of an abstract model."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        for attr in ("name", "attname", "column", "model"):
            new.__dict__.pop(attr, None)
        new.validators = list(self.validators)
        return new

    def __set_name__(self, owner: type, name: str) -> None:  # plain classes only
        self.name = name

    @overload
    def __get__(self, instance: None, owner: Any) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: Any) -> T: ...

    def __get__(self, instance: object | None, owner: Any) -> Any:
        if instance is None:
            return self
        # Only reached when the value is missing from the instance dict.
        raise AttributeError(
            f"{type(instance).__name__}.{self.name} was not loaded for this instance; "
            f"call 'await obj.refresh_from_db()' to load it"
        )

    if TYPE_CHECKING:

        def __set__(self, instance: object, value: T) -> None: ...

    # defaults ---------------------------------------------------------------------------
    def has_default(self) -> bool:
        return self.default is not NOT_PROVIDED

    def get_default(self) -> Any:
        if self.default is NOT_PROVIDED:
            return None
        return self.default() if callable(self.default) else self.default

    # validation -------------------------------------------------------------------------
    @property
    def label(self) -> str:
        model = getattr(self, "model", None)
        return f"{model.__name__}.{self.name}" if model is not None else getattr(self, "name", "?")

    def error(self, message: str) -> ValidationError:
        return ValidationError(message, field=self.label)

    def to_python(self, value: Any) -> T:
        """Coerce ``value`` (never None) to this field's Python type or raise ValidationError."""
        return value

    def clean(self, value: Any) -> T | None:
        """Validate one value the way ``save()`` and the query builder do, before any SQL."""
        if value is None:
            if not self.nullable and not self.auto_created:
                raise self.error("None is not allowed (the field is not nullable)")
            return None
        value = self.to_python(value)
        if self.choices is not None and value not in self.choices:
            raise self.error(f"{value!r} is not one of the choices {sorted(self.choices, key=repr)}")
        for validator in self.validators:
            try:
                validator(value)
            except ValidationError as exc:
                raise self.error(str(exc)) from exc
            except (ValueError, TypeError) as exc:
                raise self.error(str(exc)) from exc
        return value

    def clean_lookup_value(self, value: Any) -> Any:
        """Coerce a value compared against this column (no null/choices checks)."""
        return self.to_python(value)

    # whole columns (bulk_create) ----------------------------------------------------------
    def clean_column(self, values: list[Any]) -> list[Any] | None:
        """Validate a whole column at once, for ``bulk_create``.

        Returns the cleaned values (``values`` itself when nothing changes), or None when the
        fast check cannot vouch for every value; the caller then calls :meth:`clean` value by
        value, which also says what is wrong. Where it answers, it must answer exactly what
        :meth:`clean` would (``tests/orm/test_bulk_columns.py`` checks the fields that have one).
        """
        return None

    def _column_values(self, values: list[Any], owner: type[Field[Any]]) -> list[Any] | None:
        """The non-None values of a column, for a fast :meth:`clean_column` defined on ``owner``.

        None when the fast path does not apply: a subclass changed ``to_python``/``clean``,
        the field has choices or validators, or a None where the field does not take one.
        """
        cls = type(self)
        if (cls.to_python is not owner.to_python or cls.clean is not owner.clean
                or self.choices is not None or self.validators):
            return None
        if None not in values:
            return values
        if not self.nullable and not self.auto_created:
            return None
        return [v for v in values if v is not None]

    def clean_lookup_column(self, values: list[Any]) -> list[Any]:
        """:meth:`clean_lookup_value` of each value of an ``__in`` list (no None in it).

        ``values`` itself when :meth:`clean_column` vouches for it unchanged: ``clean(v)`` is
        ``to_python(v)`` after the checks, so an unchanged column is also its own lookup value.
        """
        if type(self).clean_lookup_value is Field.clean_lookup_value \
                and self.clean_column(values) is values:
            return values
        clean = self.clean_lookup_value
        return [clean(v) for v in values]

    def to_db_column(self, values: list[Any], dialect: str) -> list[Any]:
        """:meth:`to_db` of each clean value of a column (``values`` itself when it is the identity)."""
        if type(self).to_db is Field.to_db:
            return values
        to_db = self.to_db
        return [to_db(v, dialect) for v in values]

    # database ---------------------------------------------------------------------------
    def db_type(self, dialect: str) -> str:
        try:
            template = self.db_types[dialect]
        except KeyError:
            raise NotImplementedError(
                f"{type(self).__name__} has no column type for dialect {dialect!r}"
            ) from None
        return template.format(**self.__dict__)

    def to_db(self, value: Any, dialect: str) -> Any:
        """Turn a clean Python value into what the driver binds for ``dialect``."""
        return value

    def from_db_converter(self, dialect: str) -> Converter | None:
        """The per-row converter for values read from ``dialect``; None when the driver's is final."""
        return None

    def deconstruct(self) -> dict[str, Any]:
        """The options that describe this field (migrations and the shell's model listing)."""
        out: dict[str, Any] = {}
        for key in ("primary_key", "nullable", "unique", "db_index", "db_column"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.has_default() and not callable(self.default):
            out["default"] = self.default
        return out

    def __repr__(self) -> str:
        name = getattr(self, "name", None)
        where = f" {self.label}" if name else ""
        return f"<{type(self).__name__}{where}>"


def _normalize_choices(choices: Iterable[Any] | None) -> frozenset[Any] | None:
    if choices is None:
        return None
    values = []
    for c in choices:
        if isinstance(c, (tuple, list)) and len(c) == 2:
            values.append(c[0])
        else:
            values.append(c)
    return frozenset(values)
