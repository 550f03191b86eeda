"""Field types shared by the sample and film records (``schemas/*.schema.json``'s ``$defs``).

Numbers keep the type they were written with: JSON Schema's ``number`` takes 3 and 3.0, and
pydantic's ``float`` would turn a written ``3`` into ``3.0``, changing the bytes of a record
read and written back. Booleans and strings are refused where a number or integer is meant,
as the schemas refuse them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_serializer,
)

Number = StrictInt | StrictFloat
NonNegativeNumber = Annotated[Number, Field(ge=0)]
PositiveNumber = Annotated[Number, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
Fraction = Annotated[Number, Field(ge=0, le=1)]
Box = Annotated[list[Fraction], Field(min_length=4, max_length=4)]
"""x0, y0, x1, y1 as fractions of the frame width and height."""
PixelBox = Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=4, max_length=4)]
"""x0, y0, x1, y1 in source pixels (the probe's display size), end exclusive."""
SubjectId = Annotated[StrictStr, Field(pattern=r"^[SO][0-9]+$")]
FilmId = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{16}$")]
SampleKey = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{16}_[0-9]{5}$")]
FramePair = Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]
Bool = StrictBool

_ABSENT_MARK = "absent_when_unset"


def absent() -> Any:
    """The default of a field the schema lets a record leave out but never lets be null.
    Pydantic does not validate defaults, so a record without the field reads it as None while
    an explicit null is still refused by the field's type; the field stays out of the dump
    unless it was given (a record read back is written back as it was)."""
    return Field(default=None, json_schema_extra={_ABSENT_MARK: True})


class _Record(BaseModel):
    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> Any:
        if self is None:  # an absent record part (its parent leaves it out of the dump)
            return None
        doc = handler(self)
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra
            marked = isinstance(extra, dict) and extra.get(_ABSENT_MARK)
            if marked and name not in self.model_fields_set:
                doc.pop(name, None)
        return doc


class Closed(_Record):
    """A record part whose schema says ``additionalProperties: false``."""

    model_config = ConfigDict(extra="forbid")


class Open(_Record):
    """A record part whose schema lets other keys through (kept, after the declared ones)."""

    model_config = ConfigDict(extra="allow")
