"""What the credit website may show on a day: every published-kind record with its publication status.

For each dataset with a ``publication`` block (catalog) this builds one SQL statement over the clean
layer as it stood on the as-of day (batches received by then, the latest copy of each record):

- the severity class, by the dataset's ``severity_rules`` (publication.yaml; first rule that holds);
- the rule version governing it (by decision date or by the as-of day: ``governing``) and its terms;
- the end of publication: the decision date plus the class's maximum, or the feed's own end
  (公示截止期, 有效期至) where earlier; licences while valid; fixed periods; list entries until exit;
- repairs, upheld objections and revoked decisions dated by the as-of day (the repair dataset);
- ``status``: published, or why not (minor_not_published, expired, repaired, objection, revoked,
  unclassified, no_rule_version, list_exited, not_yet).

Only public columns leave (``public_columns``); text is scrubbed again for the website: ID numbers
and phone numbers masked (transforms/masking.py). Every value from the catalog or the feeds travels
as a bound parameter; identifiers are catalog codes checked by ``ident``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
from duckdb import sqltypes

from foundation.catalog import Catalog, Dataset, Disclosure, FieldType
from foundation.publication_rules import PublicationRules, SeverityRules
from foundation.sql_names import ident, table
from transforms.masking import scrub_public_texts

STATUSES = ("published", "minor_not_published", "expired", "repaired", "objection", "revoked",
            "unclassified", "no_rule_version", "list_exited", "not_yet")
META_COLUMNS = ["record_key", "subject_key", "department", "severity", "rule_version", "published_from",
                "published_until", "content_hash"]
_KIND_SPLIT = "[;；、,，\\s]+"
_FAR = date(9999, 12, 31)


@dataclass(frozen=True)
class PublicColumn:
    code: str
    scrub: bool  # free text: scrubbed again for the website


def public_columns(dataset: Dataset) -> list[PublicColumn]:
    """The columns of a dataset the website may show: public fields only (a resident ID field only
    where the catalog makes it public, and then in the clean layer's masked form; never its hash)."""
    return [PublicColumn(spec.code, spec.type is FieldType.TEXT and spec.mask_ids)
            for spec in dataset.fields if dataset.disclosure_of(spec) is Disclosure.PUBLIC]


def install_publication_functions(con: duckdb.DuckDBPyConnection) -> None:
    """``scrub_public(text)``: ID numbers and phone numbers masked (Arrow UDF)."""
    try:
        con.remove_function("scrub_public")
    except duckdb.InvalidInputException:
        pass
    con.create_function(  # type: ignore[call-overload]
        "scrub_public", scrub_public_texts, [sqltypes.VARCHAR], sqltypes.VARCHAR, type="arrow",
        null_handling="special", side_effects=False,
    )


def register_terms(con: duckdb.DuckDBPyConnection, rules: PublicationRules) -> None:
    """Temp table ``pub_terms``: one row per rule version and severity class."""
    con.execute("CREATE OR REPLACE TEMP TABLE pub_terms (version_id VARCHAR, eff_from DATE, eff_to DATE, "
                "severity VARCHAR, publish BOOLEAN, min_months INTEGER, max_months INTEGER, repairable BOOLEAN)")
    rows = [(v.id, v.effective_from, v.effective_to or _FAR, cls, t.publish, t.min_months, t.max_months, t.repairable)
            for v in rules.versions for cls, t in v.classes.items()]
    con.executemany("INSERT INTO pub_terms VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def severity_sql(rule_set: SeverityRules, params: dict, prefix: str = "sev") -> str:
    """A CASE expression giving the class of a clean-layer row (NULL: no rule holds)."""
    kinds = (f"list_filter(regexp_split_to_array(coalesce({ident(rule_set.kinds_field)}, ''), ${prefix}_split), "
             "lambda k: k <> '')")
    params[f"{prefix}_split"] = _KIND_SPLIT
    whens = []
    for i, rule in enumerate(rule_set.rules):
        p = f"{prefix}_{i}"
        conds = []
        if rule.kinds_any:
            params[f"{p}_any"] = rule.kinds_any
            conds.append(f"list_has_any({kinds}, ${p}_any)")
        if rule.kinds_only:
            params[f"{p}_only"] = rule.kinds_only
            conds.append(f"(len({kinds}) > 0 AND list_has_all(${p}_only, {kinds}))")
        if rule.amount_over is not None:
            if rule_set.amount_field is None:
                raise ValueError("a rule with amount_over needs the rule set's amount_field")
            params[f"{p}_amount"] = rule.amount_over
            conds.append(f"coalesce({ident(rule_set.amount_field)}::DOUBLE > ${p}_amount, false)")
        if rule.contains:
            texts = []
            for j, (code, words) in enumerate(rule.contains.items()):
                params[f"{p}_c{j}"] = words
                texts.append(f"len(list_filter(${p}_c{j}, lambda w: contains(coalesce({ident(code)}, ''), w))) > 0")
            conds.append("(" + " OR ".join(texts) + ")")
        params[f"{p}_class"] = rule.severity
        whens.append(f"WHEN {' AND '.join(conds)} THEN ${p}_class")
    return f"CASE {' '.join(whens)} END"


def _latest_rows(dataset: Dataset, columns: list[str]) -> str:
    """The dataset's clean rows received by the as-of day: the latest copy of each record (key: its
    document number and subject name), with its department."""
    pub = dataset.publication
    assert pub is not None
    doc, name = ident(pub.document_field), ident(dataset.subject.name_field)
    cols = ", ".join(f"c.{ident(c)}" for c in columns)
    key = f"md5(concat_ws(chr(31), $dataset_id, c.{doc}, c.{name}))"  # a list entry's events share it
    order = "b.received_at DESC, c.batch_id DESC, c.source_row DESC"
    partition = f"{key}, c.{ident(pub.event_field)}" if pub.event_field else key
    return f"""
    SELECT {key} AS record_key, c.subject_key, b.department, c.batch_id, c.source_row, {cols}
    FROM {table('clean', dataset.id)} c JOIN audit.batches b USING (batch_id)
    WHERE b.received_at < $cutoff AND b.superseded_by IS NULL
    QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {order}) = 1"""


def repairs_sql(catalog: Catalog, params: dict) -> str:
    """Valid repairs dated by the as-of day, received by then: (dataset_id, document, uscc, name, kind,
    repaired_on); the earliest per record and kind. Empty when the catalog has no repair dataset."""
    parts = []
    for n, ds in enumerate(d for d in catalog.datasets.values() if d.repairs):
        r = ds.repairs
        assert r is not None
        names = {name: target.id for name in (ds.field(r.dataset_field).allowed_values or [])
                 if (target := catalog.by_name(name))}
        params[f"rp{n}_names"], params[f"rp{n}_ids"] = list(names), list(names.values())
        params[f"rp{n}_kinds"], params[f"rp{n}_kind_ids"] = list(r.kinds), list(r.kinds.values())
        uscc = f"c.{ident(ds.subject.uscc_field)}" if ds.subject.uscc_field else "NULL"
        parts.append(f"""
        SELECT $rp{n}_ids[list_position($rp{n}_names, c.{ident(r.dataset_field)})] AS dataset_id,
            c.{ident(r.document_field)} AS document, {uscc} AS uscc, c.{ident(ds.subject.name_field)} AS name,
            $rp{n}_kind_ids[list_position($rp{n}_kinds, c.{ident(r.kind_field)})] AS kind,
            c.{ident(r.date_field)} AS repaired_on
        FROM {table('clean', ds.id)} c JOIN audit.batches b USING (batch_id)
        WHERE b.received_at < $cutoff AND b.superseded_by IS NULL AND c.{ident(r.date_field)} <= $as_of""")
    if not parts:
        return ("SELECT NULL::VARCHAR AS dataset_id, NULL::VARCHAR AS document, NULL::VARCHAR AS uscc, "
                "NULL::VARCHAR AS name, NULL::VARCHAR AS kind, NULL::DATE AS repaired_on WHERE false")
    return " UNION ALL ".join(parts)


def records_sql(catalog: Catalog, dataset: Dataset, *, for_mart: bool = False) -> tuple[str, dict]:
    """Every record of ``dataset`` as of ``$as_of`` (bind ``$as_of`` DATE and ``$cutoff`` TIMESTAMPTZ, the
    end of that day) with ``status``, the public columns and META_COLUMNS. Needs ``pub_terms``
    (``register_terms``), the ``scrub_public`` function and the clean views.

    ``for_mart``: the credit-records mart's columns instead (MART_COLUMNS: every subject's key, the
    record kind, repair kind and date, source batch and row; no public text, no ``scrub_public``)."""
    pub = dataset.publication
    if pub is None:
        raise ValueError(f"dataset '{dataset.id}' has no publication rules")
    rules = catalog.publication
    params: dict = {"dataset_id": dataset.id}
    public = public_columns(dataset)
    needed = list(dict.fromkeys([c.code for c in public] + pub.fields()
                                + (rules.severity_rules[pub.severity_rules].fields() if pub.severity_rules else [])
                                + ([dataset.subject.uscc_field] if dataset.subject.uscc_field else [])
                                + ([kind_field] if (kind_field := _kind_field(dataset)) else [])))
    decided = ident(pub.date_field)
    own_end = ident(pub.end_field) if pub.end_field else "NULL::DATE"
    if pub.basis == "severity":
        assert pub.severity_rules
        severity = severity_sql(rules.severity_rules[pub.severity_rules], params)
    elif pub.basis == "list":
        params["list_class"] = pub.list_severity
        severity = "$list_class"
    else:
        severity = "NULL::VARCHAR"
    governing = "decided" if rules.governing == "decision_date" else "$as_of"
    if pub.basis == "fixed":
        params["fixed_months"] = pub.max_months
        rule_end = "(decided + to_months($fixed_months))::DATE"
    elif pub.basis == "validity":
        rule_end = "NULL::DATE"
    else:
        rule_end = "(decided + to_months(max_months))::DATE"
    # The feed's own end is the last day shown (inclusive): publication ends the day after.
    end = f"least({rule_end}, own_end + 1)" if pub.basis != "fixed" else rule_end
    uscc = ident(dataset.subject.uscc_field) if dataset.subject.uscc_field else "NULL::VARCHAR"
    list_filter, exits = "", "SELECT NULL::VARCHAR AS record_key, NULL::DATE AS exited_on WHERE false"
    if pub.basis == "list":
        assert pub.event_field
        params["ev_values"], params["ev_kinds"] = list(pub.events), list(pub.events.values())
        event = f"$ev_kinds[list_position($ev_values, {ident(pub.event_field)})]"
        list_filter = f"WHERE {event} = 'entry'"
        exits = (f"SELECT record_key, min({decided}) AS exited_on FROM latest "
                 f"WHERE {event} IN ('exit', 'repair') AND {decided} <= $as_of GROUP BY record_key")
    # The feed's own end (公示截止期) outside the rules' window: reported, the earlier end still wins.
    disagrees = "false"
    if pub.basis == "severity":
        disagrees = ("own_end IS NOT NULL AND version_id IS NOT NULL AND (own_end + 1 < "
                     "(decided + to_months(min_months))::DATE"
                     " OR own_end + 1 > (decided + to_months(max_months))::DATE)")
    repairs = repairs_sql(catalog, params)
    doc, name = ident(pub.document_field), ident(dataset.subject.name_field)
    scrubbed = {c.code: f"scrub_public(r.{ident(c.code)})" if c.scrub else f"r.{ident(c.code)}" for c in public}
    public_select = ", ".join(f"{expr} AS {ident(code)}" for code, expr in scrubbed.items())
    hashed = ", ".join([f"coalesce(CAST({expr} AS VARCHAR), chr(0))" for expr in scrubbed.values()]
                       + ["coalesce(CAST(r.published_until AS VARCHAR), chr(0))"])
    final = _mart_select(dataset, doc) if for_mart else f"""
SELECT r.status, r.end_disagrees, r.{doc} AS document, r.decided, r.own_end,
    {public_select},
    r.record_key, CASE WHEN r.subject_key NOT LIKE 'P:%' THEN r.subject_key END AS subject_key, r.department,
    r.severity, r.version_id AS rule_version, r.decided AS published_from, r.published_until,
    md5(concat_ws(chr(31), {hashed})) AS content_hash
FROM r
"""
    sql = f"""
WITH latest AS ({_latest_rows(dataset, needed)}
), exits AS ({exits}
), entries AS (
    SELECT latest.*, {decided} AS decided, {own_end} AS own_end, {severity} AS severity,
        {uscc} AS uscc_, exits.exited_on
    FROM latest LEFT JOIN exits USING (record_key) {list_filter}
), repaired AS (
    SELECT document, uscc, name_key(name) AS name_key, kind, min(repaired_on) AS repaired_on
    FROM ({repairs}) WHERE dataset_id = $dataset_id GROUP BY ALL
), matched AS (  -- a repair names the record by document number and subject (code, else name)
    SELECT e.record_key, arg_min(rp.kind, rp.repaired_on) AS repair_kind, min(rp.repaired_on) AS repaired_on
    FROM entries e JOIN repaired rp ON rp.document = e.{doc}
    WHERE rp.uscc = e.uscc_ OR ((rp.uscc IS NULL OR e.uscc_ IS NULL) AND rp.name_key = name_key(e.{name}))
    GROUP BY e.record_key
), governed AS (
    SELECT entries.*, t.version_id, t.publish, t.min_months, t.max_months, t.repairable, matched.repair_kind,
        matched.repaired_on
    FROM entries LEFT JOIN matched USING (record_key) LEFT JOIN pub_terms t
      ON t.severity = entries.severity AND {governing} BETWEEN t.eff_from AND t.eff_to
), ended AS (
    SELECT governed.*, {end} AS pub_end FROM governed
), r AS (
    SELECT ended.*, pub_end - 1 AS published_until,
        CASE WHEN decided IS NULL OR decided > $as_of THEN 'not_yet'
             WHEN {'severity IS NULL' if pub.basis == 'severity' else 'false'} THEN 'unclassified'
             WHEN {'version_id IS NULL' if pub.basis in ('severity', 'list') else 'false'} THEN 'no_rule_version'
             WHEN repair_kind = 'repair' THEN 'repaired'
             WHEN repair_kind IS NOT NULL THEN repair_kind
             WHEN exited_on IS NOT NULL THEN 'list_exited'
             WHEN {'NOT publish' if pub.basis == 'severity' else 'false'} THEN 'minor_not_published'
             WHEN pub_end IS NOT NULL AND $as_of >= pub_end THEN 'expired'
             ELSE 'published' END AS status,
        {disagrees} AS end_disagrees
    FROM ended
)
{final}
"""
    return sql, params


MART_COLUMNS = ["status", "record_key", "subject_key", "department", "batch_id", "source_row", "document",
                "decided", "severity", "rule_version", "published_until", "repair_kind", "repaired_on",
                "record_kind"]


def _kind_field(dataset: Dataset) -> str | None:
    return dataset.credit.kind_field if dataset.credit else None


def _mart_select(dataset: Dataset, doc: str) -> str:
    kind = f"r.{ident(k)}" if (k := _kind_field(dataset)) else "NULL::VARCHAR"
    return f"""SELECT r.status, r.record_key, r.subject_key, r.department, r.batch_id, r.source_row,
    r.{doc} AS document, r.decided, r.severity, r.version_id AS rule_version, r.published_until,
    r.repair_kind, coalesce(r.repaired_on, r.exited_on) AS repaired_on, CAST({kind} AS VARCHAR) AS record_kind
FROM r WHERE r.status <> 'not_yet'
"""


def repair_check_sql(catalog: Catalog, dataset: Dataset) -> tuple[str, dict]:
    """For a repair dataset's batch (temp table ``typed``): ``(source_row, reason)`` of every repair row
    that names no record the warehouse holds (``repair_unknown_record``), repairs a record that may
    not be repaired early (``repair_not_repairable``) or comes before the record's minimum period
    (``repair_before_minimum``). Objections upheld and revoked decisions may come any time. Needs
    ``pub_terms`` (``register_terms``) and the clean views of the datasets it names."""
    r = dataset.repairs
    if r is None:
        raise ValueError(f"dataset '{dataset.id}' is not a repair dataset")
    rules = catalog.publication
    params: dict = {}
    targets = []
    for n, name in enumerate(dataset.field(r.dataset_field).allowed_values or []):
        target = catalog.by_name(name)
        assert target is not None and target.publication is not None  # checked when the catalog loads
        pub = target.publication
        params[f"t{n}_name"] = name
        if pub.basis == "severity":
            assert pub.severity_rules
            severity = severity_sql(rules.severity_rules[pub.severity_rules], params, prefix=f"t{n}")
        elif pub.basis == "list":
            params[f"t{n}_class"] = pub.list_severity
            severity = f"${f't{n}_class'}"
        else:
            severity = "NULL::VARCHAR"
        where = "true"
        if pub.basis == "list":
            assert pub.event_field
            params[f"t{n}_entries"] = [v for v, kind in pub.events.items() if kind == "entry"]
            where = f"list_contains($t{n}_entries, {ident(pub.event_field)})"
        uscc = ident(target.subject.uscc_field) if target.subject.uscc_field else "NULL::VARCHAR"
        targets.append(f"""
        SELECT DISTINCT $t{n}_name AS target, {ident(pub.document_field)} AS document, {uscc} AS uscc,
            name_key({ident(target.subject.name_field)}) AS name_key, {ident(pub.date_field)} AS decided,
            {severity} AS severity
        FROM {table('clean', target.id)} JOIN audit.batches b USING (batch_id)
        WHERE b.superseded_by IS NULL AND {where}""")
    params["kinds"], params["kind_ids"] = list(r.kinds), list(r.kinds.values())
    uscc = ident(dataset.subject.uscc_field) if dataset.subject.uscc_field else "NULL::VARCHAR"
    date_col = ident(f"{r.date_field}__t")
    governing = "h.decided" if rules.governing == "decision_date" else "h.repaired_on"
    sql = f"""
WITH targets AS ({' UNION ALL '.join(targets)}
), rp AS (
    SELECT source_row, {ident(r.dataset_field)} AS target, {ident(r.document_field)} AS document, {uscc} AS uscc,
        name_key({ident(dataset.subject.name_field)}) AS name_key,
        $kind_ids[list_position($kinds, {ident(r.kind_field)})] AS kind, {date_col} AS repaired_on
    FROM typed
), hits AS (
    SELECT rp.source_row, rp.kind, rp.repaired_on, t.decided, t.severity
    FROM rp JOIN targets t ON t.target = rp.target AND t.document = rp.document
     AND (t.uscc = rp.uscc OR ((t.uscc IS NULL OR rp.uscc IS NULL) AND t.name_key = rp.name_key))
), judged AS (
    SELECT h.source_row,
        CASE WHEN h.kind <> 'repair' OR h.severity IS NULL OR h.repaired_on IS NULL THEN NULL
             WHEN NOT coalesce(p.repairable, true) THEN $not_repairable
             WHEN h.repaired_on < (h.decided + to_months(coalesce(p.min_months, 0)))::DATE THEN $too_early
        END AS reason
    FROM hits h LEFT JOIN pub_terms p ON p.severity = h.severity AND {governing} BETWEEN p.eff_from AND p.eff_to
)
SELECT source_row, $unknown AS reason FROM rp ANTI JOIN hits USING (source_row)
UNION ALL
SELECT source_row, min(reason) FROM judged GROUP BY source_row HAVING bool_and(reason IS NOT NULL)
"""
    params |= {"unknown": f"repair_unknown_record:{r.document_field}",
               "not_repairable": f"repair_not_repairable:{r.document_field}",
               "too_early": f"repair_before_minimum:{r.date_field}"}
    return sql, params
