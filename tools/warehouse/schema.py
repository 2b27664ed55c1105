"""The warehouse schema: the one contract between the generator, the tools, the sandbox and the optimizer.

Money columns are DECIMAL in the account's currency (main unit, e.g. EUR, never micros or cents);
units are converted only inside the platform adapters.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from agent.errors import WarehouseBusy

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- PIM: one row per product.
CREATE TABLE IF NOT EXISTS products (
    sku VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    brand VARCHAR NOT NULL,
    price DECIMAL(12, 2) NOT NULL,
    sale_price DECIMAL(12, 2),            -- NULL when not on sale
    currency VARCHAR NOT NULL,
    margin DECIMAL(6, 4) NOT NULL,        -- gross margin as a fraction of price, 0.35 = 35 %
    description VARCHAR NOT NULL,
    url VARCHAR NOT NULL
);

-- Inventory: current stock per sku with the time it was last counted.
CREATE TABLE IF NOT EXISTS inventory (
    sku VARCHAR PRIMARY KEY,
    stock INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS accounts (
    account_id VARCHAR PRIMARY KEY,
    platform VARCHAR NOT NULL,            -- google | meta
    name VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    timezone VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id VARCHAR PRIMARY KEY,
    account_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    status VARCHAR NOT NULL,              -- ENABLED | PAUSED | REMOVED
    daily_budget DECIMAL(14, 2),          -- NULL for Meta campaigns whose ad sets hold the budget
    currency VARCHAR NOT NULL,
    bidding_strategy VARCHAR NOT NULL,    -- MANUAL_CPC | TARGET_ROAS | TARGET_CPA | LOWEST_COST
    target_roas DECIMAL(10, 4),           -- the business's ROAS target for this campaign (ratio)
    target_cpa DECIMAL(12, 2),            -- CPA target in the account currency
    category VARCHAR,                     -- product category it advertises, if any
    paused_by VARCHAR
);

-- Google ad groups and Meta ad sets.
CREATE TABLE IF NOT EXISTS ad_groups (
    ad_group_id VARCHAR PRIMARY KEY,
    campaign_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    cpc_bid DECIMAL(12, 2),               -- Google manual CPC; NULL otherwise
    daily_budget DECIMAL(14, 2),          -- Meta ad-set budget; NULL otherwise
    paused_by VARCHAR
);

CREATE TABLE IF NOT EXISTS ads (
    ad_id VARCHAR PRIMARY KEY,
    ad_group_id VARCHAR NOT NULL,
    campaign_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    sku VARCHAR,                          -- product the ad advertises
    format VARCHAR NOT NULL,              -- google_rsa | meta_link
    headlines VARCHAR[],                  -- RSA headlines; Meta: [headline]
    descriptions VARCHAR[],               -- RSA descriptions; Meta: [description]
    primary_text VARCHAR,                 -- Meta only
    final_url VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    paused_by VARCHAR,                    -- 'stock_guard', an actor id, or NULL
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS keywords (
    keyword_id VARCHAR PRIMARY KEY,
    ad_group_id VARCHAR,                  -- NULL for campaign-level negatives
    campaign_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    match_type VARCHAR NOT NULL,          -- EXACT | PHRASE | BROAD
    negative BOOLEAN NOT NULL,
    status VARCHAR NOT NULL,
    cpc_bid DECIMAL(12, 2)
);

-- Daily performance per ad. Money in the account currency.
CREATE TABLE IF NOT EXISTS performance_daily (
    day DATE NOT NULL,
    ad_id VARCHAR NOT NULL,
    ad_group_id VARCHAR NOT NULL,
    campaign_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    sku VARCHAR,
    impressions BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    cost DECIMAL(14, 2) NOT NULL,
    conversions DECIMAL(12, 2) NOT NULL,
    conversion_value DECIMAL(14, 2) NOT NULL
);

-- Applied sandbox mutations, keyed by idempotency key: applying a key twice is a no-op.
CREATE TABLE IF NOT EXISTS sandbox_mutations (
    idempotency_key VARCHAR PRIMARY KEY,
    action_kind VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    before_json VARCHAR,
    after_json VARCHAR,
    created_id VARCHAR,
    applied_at TIMESTAMP NOT NULL
);
"""


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating the schema on a writable connection).

    Raises ``WarehouseBusy`` when another process holds the file's lock: DuckDB allows one writer process.
    """
    try:
        if read_only:
            return duckdb.connect(str(path), read_only=True)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        holder = re.search(r"\(PID (\d+)\)", str(exc))
        who = f" (process {holder.group(1)})" if holder else ""
        raise WarehouseBusy(f"the warehouse {path} is in use by another adpilot process{who}; DuckDB allows one "
                            "writer at a time, so try again when it has finished") from None
    con.execute(DDL)
    return con


def is_initialised(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the demo world (or a real sync) has filled the warehouse."""
    rows = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'").fetchall()
    if not rows[0][0]:
        return False
    return bool(con.execute("SELECT count(*) FROM meta WHERE key = 'seed'").fetchall()[0][0])
