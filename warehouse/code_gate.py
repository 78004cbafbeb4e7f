"""The 1/10000 gate: batches whose 重错码率 exceeds their dataset's threshold.

A finding is a warning (recorded, reported, the run stays green) unless the rate is above the error
threshold of ``catalogs/alerts.yaml`` (``rates.error_if_code_error_above``, 1% by default): then the
ingest DAG's ``code_gate`` task fails, naming the batches.

In: batch ids just loaded. Out: one finding per batch over its catalog threshold
(``code_error_threshold``), recorded in ``audit.gate_findings`` (the batch is marked;
its rows stay loaded or quarantined as they are). The ingest DAGs fail their
``code_gate`` task on findings, after every file of the run has been loaded, so one
department's bad codes never hold back another's data.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class GateFinding:
    batch_id: str
    dataset_id: str
    department: str
    codes_received: int
    codes_bad: int
    rate: float
    threshold: float
    error_above: float = 1.0  # the error threshold (catalogs/alerts.yaml)

    @property
    def severity(self) -> str:
        return "error" if self.rate > self.error_above else "warning"

    def describe(self) -> str:
        return (f"{self.department} / {self.dataset_id} (batch {self.batch_id}): 重错码率 {self.rate:.4%} = "
                f"{self.codes_bad}/{self.codes_received} distinct codes, above the target {self.threshold:.4%}")


def check_batches(con: duckdb.DuckDBPyConnection, batch_ids: list[str], error_above: float = 1.0) -> list[GateFinding]:
    """Findings for the given batches (recorded in audit.gate_findings, replacing older ones)."""
    if not batch_ids:
        return []
    rows = con.execute(
        """SELECT c.batch_id, c.dataset_id, c.department,
                  count(DISTINCT c.code) AS received,
                  count(DISTINCT c.code) FILTER (WHERE c.erroneous OR c.duplicate) AS bad,
                  t.code_error_threshold
           FROM audit.batch_codes c JOIN ref.dataset_thresholds t USING (dataset_id)
           WHERE c.batch_id IN (SELECT unnest(?::VARCHAR[]))
           GROUP BY c.batch_id, c.dataset_id, c.department, t.code_error_threshold
           ORDER BY c.department, c.batch_id""",
        [batch_ids],
    ).fetchall()
    findings = [
        GateFinding(batch, dataset, dept, received, bad, bad / received, threshold, error_above)
        for batch, dataset, dept, received, bad, threshold in rows
        if received and bad / received > threshold
    ]
    con.execute("DELETE FROM audit.gate_findings WHERE batch_id IN (SELECT unnest(?::VARCHAR[]))", [batch_ids])
    for f in findings:
        con.execute("INSERT INTO audit.gate_findings VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [f.batch_id, f.dataset_id, f.department, f.codes_received, f.codes_bad, f.rate, f.threshold])
    return findings
