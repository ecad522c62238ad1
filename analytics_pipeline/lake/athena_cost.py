"""What an Athena query costs: $5 per TB scanned, rounded up to the MB, at least 10 MB.

AWS's pricing page bills bytes scanned "rounded up to the nearest megabyte, with a 10 MB
minimum per query"; DDL and failed queries are free, cancelled ones pay for what they
scanned. AWS billing counts data in binary units (1 MB = 2**20 bytes, 1 TB = 2**40 bytes),
so that is what we use: the decimal reading (10**12) would report about 10% more.
"""

from __future__ import annotations

PRICE_PER_TB_USD = 5.0
BYTES_PER_MB = 2**20
BYTES_PER_TB = 2**40
MINIMUM_BILLED_BYTES = 10 * BYTES_PER_MB


def billed_bytes(bytes_scanned: int) -> int:
    """Bytes Athena bills for a query that scanned this much."""
    megabytes = -(-max(bytes_scanned, 0) // BYTES_PER_MB)  # ceiling division
    return max(megabytes * BYTES_PER_MB, MINIMUM_BILLED_BYTES)


def query_cost_usd(
    bytes_scanned: int, *, state: str = "SUCCEEDED", statement_type: str = "DML"
) -> float:
    """The charge for one query; DDL statements and failed queries cost nothing."""
    if state == "FAILED" or statement_type == "DDL":
        return 0.0
    return billed_bytes(bytes_scanned) / BYTES_PER_TB * PRICE_PER_TB_USD
