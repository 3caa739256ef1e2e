"""Arrow tables handed to Great Expectations, and the type families GX checks them by.

GX validates pandas. Arrow's default conversion turns an integer column with a
null into floats and booleans into objects, which would make every nullable
column fail its type check: integers, booleans and strings go to pandas' nullable
dtypes instead, and dates and zoned timestamps to naive UTC timestamps (GX types neither Python
dates nor zoned columns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pandas as pd

# Names as GX resolves them: numpy dtype names, or pandas' extension dtype classes.
INTEGER_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
]
FLOAT_TYPES = ["float32", "float64", "Float32Dtype", "Float64Dtype"]
TIME_TYPES = ["datetime64[ns]", "datetime64[us]"]
STRING_TYPES = ["StringDtype", "str"]
BOOLEAN_TYPES = ["BooleanDtype", "bool"]


def type_family(data_type: pa.DataType) -> list[str] | None:
    """The pandas type names GX may observe for a column declared ``data_type``.

    A float column may hold integers (a warehouse may type a whole-number average
    as one); decimals are cast to floats before GX sees them. None for a type GX
    cannot tell apart (lists, structs)."""
    if pa.types.is_integer(data_type):
        return INTEGER_TYPES
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return [*FLOAT_TYPES, *INTEGER_TYPES]
    if pa.types.is_boolean(data_type):
        return BOOLEAN_TYPES
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return STRING_TYPES
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return TIME_TYPES
    return None


def _pandas_type(data_type: pa.DataType) -> object | None:
    import pandas as pd

    if pa.types.is_integer(data_type):
        return getattr(pd, f"Int{data_type.bit_width}Dtype")()
    if pa.types.is_boolean(data_type):
        return pd.BooleanDtype()
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return pd.StringDtype()
    return None


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """``table`` as GX should see it (see the module doc)."""
    columns = []
    for column in table.columns:
        if pa.types.is_date(column.type) or (
            pa.types.is_timestamp(column.type) and column.type.tz is not None
        ):
            # Stored values are UTC: dropping the zone keeps them, and GX types a
            # naive datetime64 column where it cannot type a zoned one.
            column = pc.cast(column, pa.timestamp("us"))
        elif pa.types.is_decimal(column.type):
            # Postgres numeric: a number, compared as one.
            column = pc.cast(column, pa.float64())
        columns.append(column)
    converted = pa.Table.from_arrays(columns, names=table.column_names)
    return converted.to_pandas(types_mapper=_pandas_type)


def non_null_columns(table: pa.Table) -> set[str]:
    """Columns with at least one value: an all-null column has no type to check."""
    return {name for name in table.column_names if table.column(name).null_count < len(table)}
