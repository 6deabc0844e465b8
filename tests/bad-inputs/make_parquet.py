#!/usr/bin/env python3
"""Writes the Parquet / Arrow IPC files of the bad-input corpus (tests/bad-inputs/).

The committed files are the truth; this script documents how they were made and can
regenerate them (pyarrow 26.0.1 was used):

    python3 -m venv /tmp/pq && /tmp/pq/bin/pip install pyarrow
    cd tests/bad-inputs && /tmp/pq/bin/python make_parquet.py

The two `pq_corrupt_*` files patch one footer byte at a fixed offset from the end of the
file; with another pyarrow version the footer layout may differ, so check that they still
reproduce (see cases.toml) before committing regenerated files.
"""

import datetime
import decimal

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq


def day(s):
    return datetime.date.fromisoformat(s)


def write(name, table):
    # No compression and no statistics: small, simple files.
    pq.write_table(table, name, compression="none", write_statistics=False)


def base_table():
    return pa.table(
        {
            "customer_id": pa.array(["A", "B", "A"]),
            "ts": pa.array([day("2024-01-01"), day("2024-01-02"), day("2024-01-03")], pa.date32()),
            "amount": pa.array([1.5, 2.25, -0.5]),
        }
    )


# Valid: integer customer ids (ordered numerically: 9 before 10).
write(
    "pq_ids_int.parquet",
    pa.table(
        {
            "customer_id": pa.array([9, 10, 9], pa.int64()),
            "ts": pa.array([day("2023-12-09"), day("2023-12-10"), day("2023-12-11")], pa.date32()),
            "amount": pa.array([1.5, 2.25, 3.0]),
        }
    ),
)

# Valid: doubles rounded half away from zero from their shortest decimal text.
write(
    "pq_float_amounts.parquet",
    pa.table(
        {
            "customer_id": pa.array(["A", "B", "C", "D"]),
            "ts": pa.array([day("2024-01-01")] * 4, pa.date32()),
            "amount": pa.array([1.005, 2.675, 0.125, -1.005]),
        }
    ),
)

# Valid: timestamps with a time zone use their UTC date (23:30 UTC is already the next
# day in Tokyo, but the UTC date counts).
write(
    "pq_tz_timestamps.parquet",
    pa.table(
        {
            "customer_id": pa.array(["A", "B"]),
            "ts": pa.array(
                [
                    datetime.datetime(2024, 3, 31, 23, 30, tzinfo=datetime.timezone.utc),
                    datetime.datetime(2024, 4, 1, 12, 0, tzinfo=datetime.timezone.utc),
                ],
                pa.timestamp("us", tz="Asia/Tokyo"),
            ),
            "amount": pa.array([1.0, 2.0]),
        }
    ),
)

# Row-level: NaN, inf, null amount, null customer (rows 2..5); rows 1 and 6 are fine.
write(
    "pq_nan_amounts.parquet",
    pa.table(
        {
            "customer_id": pa.array([1, 2, 3, 4, None, 6], pa.int64()),
            "ts": pa.array([day("2024-01-01")] * 6, pa.date32()),
            "amount": pa.array([1.0, float("nan"), float("inf"), None, 3.0, 4.0]),
        }
    ),
)

# Wrong types for a role.
t = base_table()
write("pq_amount_date.parquet", t.set_column(2, "amount", pa.array([day("2024-01-01")] * 3, pa.date32())))
write("pq_amount_bool.parquet", t.set_column(2, "amount", pa.array([True, False, True])))
write("pq_time_int.parquet", t.set_column(1, "ts", pa.array([20240101, 20240102, 20240103], pa.int64())))

# Money as a Parquet DECIMAL (the natural type for money).
write(
    "pq_amount_decimal.parquet",
    t.set_column(
        2,
        "amount",
        pa.array([decimal.Decimal("1.005"), decimal.Decimal("2.250"), decimal.Decimal("-0.500")], pa.decimal128(10, 3)),
    ),
)

# A date32 far outside any calendar a date library supports (~273,000 years after 1970).
write(
    "pq_date_out_of_range.parquet",
    t.set_column(1, "ts", pa.array([19723, 100_000_000, 19725], pa.date32())),
)

# Unsigned ids beyond the signed 64-bit range.
write(
    "pq_u64_ids.parquet",
    t.set_column(0, "customer_id", pa.array([1, 2**63 + 5, 1], pa.uint64())),
)

# Dictionary-encoded string ids (what pandas writes for a 'category' column).
write("pq_dict_ids.parquet", t.set_column(0, "customer_id", pa.array(["A", "B", "A"]).dictionary_encode()))

# Truncated: the first half of a valid file (no footer).
write("pq_base.tmp.parquet", t)
with open("pq_base.tmp.parquet", "rb") as f:
    valid = f.read()
with open("pq_truncated.parquet", "wb") as f:
    f.write(valid[: len(valid) // 2])

# Not Parquet at all.
with open("pq_garbage.parquet", "wb") as f:
    f.write(b"customer_id,ts,amount\nA,2024-01-01,1.00\n")


def patch(name, offset_from_end, value):
    b = bytearray(valid)
    b[len(b) + offset_from_end] = value
    with open(name, "wb") as f:
        f.write(bytes(b))


# One byte of the Thrift footer changed: polars 0.55 panics in its footer decoder
# in its Thrift footer decoder (file_metadata_thrift.rs) on the first and in
# column-chunk metadata (column_chunk_metadata.rs) on the second.
patch("pq_corrupt_thrift.parquet", -566, 0x41)
patch("pq_corrupt_meta.parquet", -529, 0x11)

import os

os.remove("pq_base.tmp.parquet")

# Arrow IPC: the first half of a valid file.
feather.write_feather(t, "ipc_base.tmp.arrow", compression="uncompressed")
with open("ipc_base.tmp.arrow", "rb") as f:
    ipc = f.read()
with open("ipc_truncated.arrow", "wb") as f:
    f.write(ipc[: len(ipc) // 2])
os.remove("ipc_base.tmp.arrow")
