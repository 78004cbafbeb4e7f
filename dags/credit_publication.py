"""
### Publication to the credit website (信用网站发布): prepare, review, release

One run a month, on the 1st at 09:00 Asia/Shanghai (after the monthly close at 00:00), and by hand
with the param `as_of` (a date; default: the day the run's data interval ends, or the trigger's day
for a run without one). Nothing reaches the website without a named reviewer's approval.

1. **prepare** builds a candidate release as of that day from the clean layer and the catalog
   (public datasets and fields only, IDs masked, expired / repaired / minor records out):
   `<data root>/publication/candidates/<release id>/`, with what is added, changed, expired and
   withdrawn since the last release and the Chinese review page `review.html`.
2. **review** waits in Airflow's human-in-the-loop *Required actions* (task state `awaiting_input`,
   no worker slot held) for a reviewer to choose 批准发布 or 驳回, with an optional note (the
   reason, when rejecting). Unanswered for 10 days, it fails: the candidate has gone stale
   (records may have expired since) and the next run prepares a fresh one.
3. **publish** (on approval) writes the immutable snapshot `<data root>/publication/<release id>/`
   with the reviewer as approver and the content hash; approving a published release again
   publishes nothing. **record_rejection** (on rejection) marks the candidate rejected: nothing
   is published.

The release logic is `credit.publication`, shared with `credit publish prepare | show | approve |
reject | status` for reviewers without the UI.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pendulum
from airflow.providers.standard.operators.hitl import HITLBranchOperator, HITLOperator
from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from credit.dag_common import DEFAULT_ARGS, TIME_ZONE, WRITER_POOL
from foundation.catalog import get_catalog
from foundation.settings import get_settings

PUBLICATION_DAG_ID = "credit_publication"
APPROVE, REJECT = "批准发布", "驳回"
REVIEW_WINDOW = timedelta(days=10)  # longer than the Spring Festival and National Day breaks
DEFAULT_REJECTION_REASON = "审核人在 Airflow 中驳回，未填写理由"
RESPONSE_XCOM = "response"

REVIEW_SUBJECT = "信用网站发布审核：{{ ti.xcom_pull(task_ids='prepare')['release_id'] }}"
REVIEW_BODY = """\
{% set r = ti.xcom_pull(task_ids='prepare') %}
发布候选 **{{ r.release_id }}**，数据截至 **{{ r.as_of }}**，公示记录 {{ r.records }} 条。
相对上次发布（{{ r.previous_release or "无，首次发布" }}）的变化：

| 新增 | 变更 | 到期撤下 | 撤回（信用修复、异议成立、决定撤销等） |
|---:|---:|---:|---:|
| {{ r.changes.added }} | {{ r.changes.changed }} | {{ r.changes.expired }} | {{ r.changes.withdrawn }} |

待核实问题 {{ r.findings }} 条（无法判定严重程度等，未予公示）。

审核页面（各类变化的样例，可核对脱敏）：`{{ r.review_page }}`

选择“批准发布”后，该候选即发布到 `publication/{{ r.release_id }}/`，信用网站读取该快照，
并记录您为批准人；选择“驳回”则不发布任何内容，请在“审核意见”中写明理由。
"""


class ReleaseReview(HITLBranchOperator):
    """The reviewer's choice branches to publish or record_rejection; the response itself (who answered,
    when, the choice and the note) is the XCom ``response``, which both downstream tasks record."""

    def execute_complete(self, context, event: dict):
        response = HITLOperator.execute_complete(self, context=context, event=event)
        # Pushed first: branching ends the task by raising DownstreamTasksSkipped, so no return value is kept.
        context["ti"].xcom_push(key=RESPONSE_XCOM, value=response)
        branches = [self.options_mapping[option] for option in response["chosen_options"]]
        self.hitl_summary_extra["branches_to_execute"] = branches
        return self.do_branch(context=context, branches_to_execute=branches)


def release_call(function, *args, **kwargs):
    """Call the release library; its ReleaseError (a rejected, stale or unknown release) fails the task
    without retries: a retry cannot change that answer."""
    from airflow.sdk.exceptions import AirflowFailException

    from credit.publication import ReleaseError

    try:
        return function(*args, **kwargs)
    except ReleaseError as exc:
        raise AirflowFailException(str(exc)) from exc


def release_as_of(param: str | None, interval_end: datetime) -> date:
    """The run's as-of day: the ``as_of`` param, else the day its data interval ends (Asia/Shanghai)."""
    if param:
        return date.fromisoformat(param)
    return pendulum.instance(interval_end).in_timezone(TIME_ZONE).date()


def reviewer(response: dict) -> tuple[str, str | None]:
    """The responding user's name and the note from a ReleaseReview response."""
    user = response.get("responded_by_user") or {}
    if not user.get("name"):
        raise ValueError(f"the review response names no user: {response!r}")
    note = (response.get("params_input") or {}).get("note")
    return user["name"], (note.strip() or None) if isinstance(note, str) else None


@dag(
    dag_id=PUBLICATION_DAG_ID,
    description="信用网站发布: 候选 -> 人工审核 -> 发布快照",
    schedule=CronDataIntervalTimetable("0 9 1 * *", timezone=TIME_ZONE),
    start_date=pendulum.datetime(2025, 2, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,  # each release is diffed against the one before it
    default_args=DEFAULT_ARGS,
    tags=["credit", "publication"],
    doc_md=__doc__,
    params={"as_of": Param(None, type=["null", "string"], format="date", title="as_of 截至日期",
                           description="The release's as-of day (YYYY-MM-DD); empty: the day the run's "
                                       "data interval ends")},
)
def credit_publication():
    @task(pool=WRITER_POOL)
    def prepare(params=None, data_interval_end=None, dag_run=None) -> dict:
        """The candidate release as of the run's day, its changes since the last release and its review page."""
        from credit.publication import prepare_release

        as_of = release_as_of((params or {}).get("as_of"), data_interval_end or dag_run.run_after)
        release = release_call(prepare_release, get_settings(), get_catalog(), as_of,
                               prepared_by=f"airflow:{PUBLICATION_DAG_ID}/{dag_run.run_id}")
        return {"release_id": release.release_id, "as_of": release.as_of.isoformat(),
                "previous_release": release.previous_release, "records": release.records,
                "changes": release.changes, "findings": release.findings, "counts": release.counts,
                "review_page": str(release.review_page)}

    prepared = prepare()
    review = ReleaseReview(
        task_id="review",
        subject=REVIEW_SUBJECT,
        body=REVIEW_BODY,
        options=[APPROVE, REJECT],
        options_mapping={APPROVE: "publish", REJECT: "record_rejection"},
        params={"note": Param(None, type=["null", "string"], title="审核意见",
                              description="批准时可留空；驳回时请写明理由")},
        response_timeout=REVIEW_WINDOW,
        retries=0,  # a retry would put the same, by then stale, candidate to the reviewers again
    )

    @task(pool=WRITER_POOL)
    def publish(prepared: dict, response: dict) -> dict:
        """Publish the approved candidate as the website's snapshot, recording the reviewer as approver
        (approving an already published release returns it unchanged)."""
        from credit.publication import approve_release

        name, note = reviewer(response)
        release = release_call(approve_release, get_settings(), get_catalog(), prepared["release_id"],
                               approver=name, note=note)
        return {"release_id": release.release_id, "status": release.status, "folder": str(release.folder),
                "content_hash": release.content_hash, "approved_by": release.decided_by}

    @task(pool=WRITER_POOL)
    def record_rejection(prepared: dict, response: dict) -> dict:
        """Mark the rejected candidate with the reviewer and the reason; nothing is published."""
        from credit.publication import reject_release

        name, note = reviewer(response)
        release = release_call(reject_release, get_settings(), prepared["release_id"], reviewer=name,
                               reason=note or DEFAULT_REJECTION_REASON)
        return {"release_id": release.release_id, "status": release.status, "rejected_by": release.decided_by}

    prepared >> review
    publish(prepared, review.output[RESPONSE_XCOM])
    record_rejection(prepared, review.output[RESPONSE_XCOM])


credit_publication()
