"""BI over the DuckDB warehouse: a small semantic layer, never free SQL from a model.

A model asks with a ``BIQuery`` (metrics, dimensions, typed filters, a date range, top-N, an
optional comparison with the previous period). The query is validated by pydantic and compiled
here to one parameterised SELECT: metric and dimension names come from the whitelists below,
every value a model supplies travels as a ``?`` parameter, and the statement runs on the tools'
read-only warehouse path (``tools.deps.ReadOnlyWarehouse``).

Metrics are defined once, as SQL over five base sums; ratios divide by ``NULLIF(x, 0)``, so a
ratio with a zero denominator is null, not an error. Facts are aggregated first and names joined
afterwards, so the large table is scanned once per period and joined only where a dimension or a
filter needs it (category needs the product of each row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from agent.errors import BadInput
from tools.deps import ToolDeps
from tools.registry import limit_field, tool

Metric = Literal["spend", "impressions", "clicks", "conversions", "revenue",
                 "roas", "cpa", "ctr", "cvr", "cpc", "aov"]
Dimension = Literal["platform", "account", "campaign", "ad_group", "ad", "product", "category", "day", "week"]
FilterOp = Literal["eq", "in", "contains"]

MAX_SPAN_DAYS = 366
RATIO_DECIMALS = 4

# The base sums every metric is built from (``p`` is performance_daily).
BASE_SUMS: dict[str, str] = {
    "spend": "sum(p.cost)",
    "impressions": "sum(p.impressions)",
    "clicks": "sum(p.clicks)",
    "conversions": "sum(p.conversions)",
    "revenue": "sum(p.conversion_value)",
}

# Each metric once, as SQL over the base sums ({spend} etc. are filled with column expressions).
METRIC_SQL: dict[str, str] = {
    "spend": "{spend}",
    "impressions": "{impressions}",
    "clicks": "{clicks}",
    "conversions": "{conversions}",
    "revenue": "{revenue}",
    "roas": "{revenue} / NULLIF({spend}, 0)",
    "cpa": "{spend} / NULLIF({conversions}, 0)",
    "ctr": "{clicks} / NULLIF({impressions}, 0)",
    "cvr": "{conversions} / NULLIF({clicks}, 0)",
    "cpc": "{spend} / NULLIF({clicks}, 0)",
    "aov": "{revenue} / NULLIF({conversions}, 0)",
}
RATIOS = frozenset({"roas", "cpa", "ctr", "cvr", "cpc", "aov"})
INTEGER_METRICS = frozenset({"impressions", "clicks"})

METRICS_HELP = ("spend (ad cost), impressions, clicks, conversions, revenue (conversion value), "
                "roas = revenue/spend, cpa = spend/conversions, ctr = clicks/impressions, "
                "cvr = conversions/clicks, cpc = spend/clicks, aov = revenue/conversions")


@dataclass(frozen=True)
class DimensionDef:
    """How a dimension maps to SQL."""

    key: str                          # grouping expression over performance_daily p (and products prd)
    label_table: str | None = None    # table holding the human name, joined after aggregation
    label_id: str | None = None       # its key column
    label: str | None = None          # its name expression, ``{t}`` standing for the table or its alias
    needs_product: bool = False       # the key itself needs products joined before aggregation
    is_date: bool = False


DIMENSIONS: dict[str, DimensionDef] = {
    "platform": DimensionDef("p.platform"),
    "account": DimensionDef("p.account_id", "accounts", "account_id", "{t}.name"),
    "campaign": DimensionDef("p.campaign_id", "campaigns", "campaign_id", "{t}.name"),
    "ad_group": DimensionDef("p.ad_group_id", "ad_groups", "ad_group_id", "{t}.name"),
    "ad": DimensionDef("p.ad_id", "ads", "ad_id", "{t}.headlines[1]"),
    "product": DimensionDef("p.sku", "products", "sku", "{t}.name"),
    "category": DimensionDef("prd.category", needs_product=True),
    "day": DimensionDef("p.day", is_date=True),
    "week": DimensionDef("CAST(date_trunc('week', p.day) AS DATE)", is_date=True),
}


class Filter(BaseModel):
    """Keep only rows whose dimension matches."""

    dimension: Dimension = Field(description="Dimension to filter on.")
    op: FilterOp = Field(default="eq", description="eq: equals the one value; in: equals any value; contains: "
                                                   "the id or name contains any value (case-insensitive).")
    values: list[str] = Field(min_length=1, max_length=50,
                              description="Ids or exact names (campaign 'Sommer Sale' or 'gc-001'); "
                                          "ISO dates (YYYY-MM-DD) for day and week (a week is its Monday).")

    @field_validator("values")
    @classmethod
    def _values(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip() for v in values]
        if any(not v or len(v) > 200 for v in cleaned):
            raise ValueError("filter values must be 1 to 200 characters")
        return cleaned

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.op == "eq" and len(self.values) != 1:
            raise ValueError("op eq takes exactly one value (use in for several)")
        if DIMENSIONS[self.dimension].is_date:
            if self.op == "contains":
                raise ValueError(f"{self.dimension} filters take eq or in with ISO dates, not contains")
            for value in self.values:
                try:
                    date.fromisoformat(value)
                except ValueError as exc:
                    raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from exc
        return self


class BIQuery(BaseModel):
    """A performance question: metrics by dimensions over a date range."""

    metrics: list[Metric] = Field(min_length=1, max_length=len(METRIC_SQL),
                                  description=f"Metrics to compute: {METRICS_HELP}.")
    dimensions: list[Dimension] = Field(default_factory=list, max_length=3,
                                        description="Group by these (none: one total row). account, campaign, "
                                                    "ad_group, ad and product rows carry the name too.")
    filters: list[Filter] = Field(default_factory=list, max_length=10,
                                  description="All filters must hold (AND).")
    start: date | None = Field(default=None, description="First day, inclusive (with end).")
    end: date | None = Field(default=None, description="Last day, inclusive (with start).")
    last_days: int | None = Field(default=None, ge=1, le=MAX_SPAN_DAYS,
                                  description="Instead of start/end: the last N days of data, ending on the "
                                              "newest day in the warehouse.")
    order_by: Metric | None = Field(default=None, description="Rank rows by this metric (default: the first "
                                                              "metric; by date when grouping by day or week).")
    ascending: bool = Field(default=False, description="Lowest first instead of highest first.")
    limit: int = limit_field("rows (top N)")
    compare_previous: bool = Field(default=False, description="Also compute the previous period of the same "
                                                              "length and the relative change.")

    @field_validator("metrics", "dimensions")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.last_days is not None:
            if self.start is not None or self.end is not None:
                raise ValueError("give either last_days or start and end, not both")
        elif self.start is None or self.end is None:
            raise ValueError("a date range is required: start and end, or last_days")
        elif self.start > self.end:
            raise ValueError(f"empty date range: start {self.start} is after end {self.end}")
        elif (self.end - self.start).days + 1 > MAX_SPAN_DAYS:
            raise ValueError(f"the date range spans more than {MAX_SPAN_DAYS} days")
        if "day" in self.dimensions and "week" in self.dimensions:
            raise ValueError("group by day or by week, not both")
        return self

    def period(self, newest_day: date) -> tuple[date, date]:
        """The inclusive date range asked for (``last_days`` ends on ``newest_day``)."""
        if self.last_days is not None:
            return newest_day - timedelta(days=self.last_days - 1), newest_day
        assert self.start is not None and self.end is not None  # guaranteed by _range
        return self.start, self.end


@dataclass(frozen=True)
class CompiledQuery:
    """One parameterised SELECT."""

    sql: str
    params: list[Any]


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length right before ``start``."""
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def _raw_metric(name: str, column: str) -> str:
    """Metric SQL over base columns named ``column.format(base)``."""
    return METRIC_SQL[name].format(**{b: column.format(b) for b in BASE_SUMS})


def _metric(name: str, column: str) -> str:
    """Like ``_raw_metric``, with ratios as DOUBLE rounded to RATIO_DECIMALS."""
    expr = _raw_metric(name, column)
    if name in RATIOS:
        return f"round(CAST({expr} AS DOUBLE), {RATIO_DECIMALS})"
    return expr


def _filter_sql(flt: Filter) -> tuple[str, list[Any]]:
    dim = DIMENSIONS[flt.dimension]
    marks = ", ".join("?" for _ in flt.values)
    if dim.is_date:
        casts = ", ".join("CAST(? AS DATE)" for _ in flt.values)
        return f"{dim.key} IN ({casts})", list(flt.values)
    if flt.dimension == "category":
        if flt.op == "contains":
            any_of = " OR ".join("contains(lower(category), lower(?))" for _ in flt.values)
            return f"p.sku IN (SELECT sku FROM products WHERE {any_of})", list(flt.values)
        return (f"p.sku IN (SELECT sku FROM products WHERE lower(category) IN ({marks}))",
                [v.lower() for v in flt.values])
    if dim.label_table is None:  # platform
        if flt.op == "contains":
            return " OR ".join(f"contains(lower({dim.key}), lower(?))" for _ in flt.values), list(flt.values)
        return f"lower({dim.key}) IN ({marks})", [v.lower() for v in flt.values]
    # Ids match exactly; names (and, with contains, parts of ids or names) through a semi-join on the
    # small dimension table, so the fact table is never joined just to filter.
    label = (dim.label or "").format(t=dim.label_table)
    names = f"SELECT {dim.label_id} FROM {dim.label_table} WHERE"
    if flt.op == "contains":
        key_any = " OR ".join(f"contains(lower({dim.key}), lower(?))" for _ in flt.values)
        name_any = " OR ".join(f"contains(lower({label}), lower(?))" for _ in flt.values)
        return f"({key_any} OR {dim.key} IN ({names} {name_any}))", [*flt.values, *flt.values]
    return (f"({dim.key} IN ({marks}) OR {dim.key} IN ({names} lower({label}) IN ({marks})))",
            [*flt.values, *(v.lower() for v in flt.values)])


def _aggregate(query: BIQuery, start: date, end: date) -> tuple[str, list[Any]]:
    """SQL grouping the fact table by the query's dimension keys over one period, with its parameters."""
    keys = [f"{DIMENSIONS[d].key} AS k_{d}" for d in query.dimensions]
    # coalesce: an ungrouped query over no rows still answers 0, not null.
    sums = [f"coalesce({expr}, 0) AS {name}" for name, expr in BASE_SUMS.items()]
    needs_product = any(DIMENSIONS[d].needs_product for d in query.dimensions)
    join = " LEFT JOIN products prd ON prd.sku = p.sku" if needs_product else ""
    where = ["p.day BETWEEN ? AND ?"]
    params: list[Any] = [start, end]
    for flt in query.filters:
        clause, values = _filter_sql(flt)
        where.append(f"({clause})")
        params += values
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    sql = f"SELECT {', '.join([*keys, *sums])} FROM performance_daily p{join} WHERE {' AND '.join(where)}{group}"
    return sql, params


def compile_query(query: BIQuery, start: date, end: date) -> CompiledQuery:
    """Compile a validated query for the period ``start``..``end`` into one parameterised SELECT.

    Output columns: ``k_<dim>`` and ``l_<dim>`` (name) per dimension, ``m_<metric>`` (and with a
    comparison ``p_<metric>`` and ``c_<metric>``, the previous value and relative change), then
    ``n_rows`` and ``t_<metric>`` / ``tp_<metric>`` (totals over all rows, not only the top N).
    """
    dims = query.dimensions
    compare = query.compare_previous
    cur_sql, params = _aggregate(query, start, end)
    ctes = [f"cur AS MATERIALIZED ({cur_sql})"]
    if compare:
        prev_sql, prev_params = _aggregate(query, *previous_period(start, end))
        ctes.append(f"prev AS MATERIALIZED ({prev_sql})")
        params += prev_params
        # A full join keeps groups that only had activity in one of the periods; their missing side is 0.
        on = " AND ".join(f"c.k_{d} IS NOT DISTINCT FROM v.k_{d}" for d in dims) or "TRUE"
        keys = [f"coalesce(c.k_{d}, v.k_{d}) AS k_{d}" for d in dims]
        bases = [f"coalesce(c.{b}, 0) AS {b}, coalesce(v.{b}, 0) AS prev_{b}" for b in BASE_SUMS]
        ctes.append(f"j AS (SELECT {', '.join([*keys, *bases])} FROM cur c FULL OUTER JOIN prev v ON {on})")
    else:
        ctes.append("j AS (SELECT * FROM cur)")

    select: list[str] = []
    joins: list[str] = []
    for d in dims:
        dim = DIMENSIONS[d]
        select.append(f"j.k_{d}")
        if dim.label_table is not None:
            alias = f"t_{d}"
            joins.append(f"LEFT JOIN {dim.label_table} {alias} ON {alias}.{dim.label_id} = j.k_{d}")
            select.append(f"{(dim.label or '').format(t=alias)} AS l_{d}")
        else:
            select.append(f"NULL AS l_{d}")
    order_metric = query.order_by or query.metrics[0]
    metrics = list(dict.fromkeys([*query.metrics, order_metric]))
    for m in metrics:
        select.append(f"{_metric(m, 'j.{}')} AS m_{m}")
        if compare:
            select.append(f"{_metric(m, 'j.prev_{}')} AS p_{m}")
            now, before = _raw_metric(m, "j.{}"), _raw_metric(m, "j.prev_{}")
            select.append(f"round((CAST({now} AS DOUBLE) - CAST({before} AS DOUBLE)) "
                          f"/ NULLIF(CAST({before} AS DOUBLE), 0), {RATIO_DECIMALS}) AS c_{m}")
    # Window totals are computed over every group before LIMIT cuts the preview.
    select.append("count(*) OVER () AS n_rows")
    for m in metrics:
        select.append(f"{_metric(m, 'sum(j.{}) OVER ()')} AS t_{m}")
        if compare:
            select.append(f"{_metric(m, 'sum(j.prev_{}) OVER ()')} AS tp_{m}")

    date_dims = [d for d in dims if DIMENSIONS[d].is_date]
    direction = "ASC" if query.ascending else "DESC"
    if date_dims and query.order_by is None:
        order = [f"j.k_{date_dims[0]}"]
    else:
        order = [f"m_{order_metric} {direction} NULLS LAST"]
    order += [f"j.k_{d} NULLS LAST" for d in dims]
    sql = (f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM j {' '.join(joins)} "
           f"ORDER BY {', '.join(order)} LIMIT ?")
    return CompiledQuery(sql=sql, params=[*params, query.limit])


MetricValue = Decimal | int | None


class BIRow(BaseModel):
    """One group of the result."""

    keys: dict[str, str | None] = Field(description="Dimension values: ids, platform, ISO dates.")
    labels: dict[str, str | None] = Field(default_factory=dict, description="Names of ids, where they have one.")
    values: dict[str, MetricValue] = Field(description="Metric values; null when a ratio's denominator is zero.")
    previous: dict[str, MetricValue] | None = Field(default=None, description="Values in the previous period.")
    change: dict[str, float | None] | None = Field(default=None,
                                                   description="Relative change vs previous (0.1 = +10 %).")


class BIResult(BaseModel):
    """The answer to a BIQuery: the top rows, totals over all rows, and the period."""

    start: date = Field(description="First day of the period.")
    end: date = Field(description="Last day of the period.")
    previous_start: date | None = Field(default=None, description="First day of the comparison period.")
    previous_end: date | None = Field(default=None, description="Last day of the comparison period.")
    dimensions: list[str] = Field(description="Grouped by.")
    currency: str | None = Field(description="Currency of spend, revenue, CPA, CPC and AOV; null when the accounts "
                                             "bill in different currencies (then group or filter by account).")
    rows: list[BIRow] = Field(description="At most `limit` rows, ranked.")
    row_count: int = Field(description="How many groups there are in all.")
    truncated: bool = Field(description="True when row_count exceeds the rows shown.")
    totals: dict[str, MetricValue] = Field(description="Metrics over all groups, not only the rows shown.")
    previous_totals: dict[str, MetricValue] | None = Field(default=None,
                                                           description="Totals of the comparison period.")


def _value(metric: str, raw: Any) -> MetricValue:
    if raw is None:
        return None
    if metric in INTEGER_METRICS:
        return int(raw)
    if metric in RATIOS:
        return Decimal(repr(float(raw)))
    return Decimal(raw)


def _key(raw: Any) -> str | None:
    if raw is None:
        return None
    return raw.isoformat() if isinstance(raw, date) else str(raw)


def data_coverage(deps: ToolDeps) -> tuple[date | None, date | None]:
    """First and last day with performance data."""
    first, last = deps.warehouse.query("SELECT min(day), max(day) FROM performance_daily")[0]
    return first, last


def run_query(deps: ToolDeps, query: BIQuery) -> BIResult:
    """Resolve the period, compile, run on the read-only path and shape the result."""
    first, last = data_coverage(deps)
    if first is None or last is None:
        raise BadInput("the warehouse has no performance data yet")
    start, end = query.period(last)
    if end < first or start > last:
        raise BadInput(f"no performance data between {start} and {end}; data covers {first} to {last}")
    compiled = compile_query(query, start, end)
    columns, rows = deps.warehouse.query_with_columns(compiled.sql, compiled.params)
    records = [dict(zip(columns, r, strict=True)) for r in rows]
    compare = query.compare_previous
    shaped = []
    for rec in records:
        labelled = [d for d in query.dimensions if DIMENSIONS[d].label_table is not None]
        shaped.append(BIRow(
            keys={d: _key(rec[f"k_{d}"]) for d in query.dimensions},
            labels={d: rec[f"l_{d}"] for d in labelled},
            values={m: _value(m, rec[f"m_{m}"]) for m in query.metrics},
            previous={m: _value(m, rec[f"p_{m}"]) for m in query.metrics} if compare else None,
            change={m: rec[f"c_{m}"] for m in query.metrics} if compare else None,
        ))
    if records:
        totals = {m: _value(m, records[0][f"t_{m}"]) for m in query.metrics}
        prev_totals = {m: _value(m, records[0][f"tp_{m}"]) for m in query.metrics} if compare else None
    else:
        totals = {m: (None if m in RATIOS else _value(m, 0)) for m in query.metrics}
        prev_totals = dict(totals) if compare else None
    currencies = [r[0] for r in deps.warehouse.query("SELECT DISTINCT currency FROM accounts")]
    prev = previous_period(start, end) if compare else (None, None)
    row_count = int(records[0]["n_rows"]) if records else 0
    return BIResult(start=start, end=end, previous_start=prev[0], previous_end=prev[1],
                    dimensions=list(query.dimensions), currency=currencies[0] if len(currencies) == 1 else None,
                    rows=shaped, row_count=row_count,
                    truncated=row_count > len(shaped), totals=totals, previous_totals=prev_totals)


@tool("read")
def query_performance(deps: ToolDeps, args: BIQuery) -> BIResult:
    """Query ad performance metrics (spend, revenue, ROAS, CPA, CTR...) by campaign, product, category, day...

    Dimensions: platform, account, campaign, ad_group, ad, product, category, day, week.
    Give metrics, optional dimensions and filters, and a date range (start and end, or last_days).
    Returns the top `limit` rows ranked by `order_by`, totals over all rows, and with
    compare_previous the previous period of the same length and the relative change. Ratios whose
    denominator is zero are null.
    """
    return run_query(deps, args)
