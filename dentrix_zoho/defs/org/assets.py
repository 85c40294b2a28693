"""The org level in Dagster: the cross-office patient audit over every office of the offices file.

One asset for the whole org, not partitioned: it reads every office's staged ``dentrix/patient``
(a dependency on all of that asset's office partitions, ``AllPartitionMapping``) and, under the
policy ``merge``, records in the ledger the groups every office's load then reads. It exists only
with an offices file; one office has no other to compare with.

It is materialized by its own job, ``cross_office_audit``, between the offices' staging and their
loads (docs/cross_office.md), rather than wired into the per-office jobs: a Dagster job runs
one partitions definition, so an unpartitioned asset cannot ride in an office's run, and a run per
office would re-audit the whole org from each office's run while the others are staging. Nor is
it an upstream of the load steps in the graph: that would mark every loaded office stale whenever
an office is added and the org audited again, though nothing of theirs needs loading again. Domain
code: ``dentrix_zoho.org.run``.
"""

from typing import Any

import dagster as dg

from dentrix_zoho.defs.source.assets import staged_asset_key
from dentrix_zoho.defs.workspace_resource import WorkspaceResource

ORG_GROUP = "dentrix_org"
CROSS_OFFICE_AUDIT_KEY = dg.AssetKey(["dentrix_org", "cross_office_audit"])
CROSS_OFFICE_AUDIT_JOB = "cross_office_audit"


class CrossOfficeAuditConfig(dg.Config):
    skip_unstaged: bool = False  # audit the offices staged so far; audit again before loading the others


def build_org_assets(partitions_def: dg.PartitionsDefinition | None) -> list[dg.AssetsDefinition]:
    """The org-level assets: none without an offices file (``partitions_def`` None)."""
    if partitions_def is None:
        return []

    @dg.asset(
        key=CROSS_OFFICE_AUDIT_KEY,
        group_name=ORG_GROUP,
        kinds={"duckdb", "markdown"},
        deps=[dg.AssetDep(staged_asset_key("patient"), partition_mapping=dg.AllPartitionMapping())],
        description=(
            "Patients seen at several offices: compares the staged patients of every office of the offices file "
            "(birth date and gender, then close names, or close last names and the same mobile or e-mail) and "
            "writes $DENTRIX_ZOHO_HOME/org/reports/cross_office_audit.md (ids only). Under "
            "DENTRIX_CROSS_OFFICE_POLICY=merge it records the groups in the ledger for the offices' loads: run it "
            "after staging every office and before loading them, and again when offices are added. A failure "
            "names the offices not staged yet or a snapshot that cannot be read (an office's staging running)."
        ),
    )
    def cross_office_audit(context: dg.AssetExecutionContext, config: CrossOfficeAuditConfig,
                           workspace: WorkspaceResource) -> dg.MaterializeResult:
        from dentrix_zoho.defs.offices import offices_of
        from dentrix_zoho.offices import OfficesError
        from dentrix_zoho.org.cross_office import CrossOfficeAuditError
        from dentrix_zoho.org.policy import CrossOfficePolicy, CrossOfficePolicyError
        from dentrix_zoho.org.run import audit_offices

        try:
            policy = CrossOfficePolicy.from_env()
            audit = audit_offices(offices_of(workspace), workspace.resolved_ledger_url, policy=policy,
                                  skip_unstaged=config.skip_unstaged)
        except (CrossOfficeAuditError, CrossOfficePolicyError, OfficesError) as exc:
            raise dg.Failure(str(exc)) from None
        summary = audit.summary()
        context.log.info(f"cross-office audit: {summary}")
        return dg.MaterializeResult(metadata={
            **summary,
            "dagster/row_count": int(summary["records_in_groups"]),
            "report": dg.MetadataValue.path(str(audit.path)),
        })

    return [cross_office_audit]


def build_org_jobs(partitions_def: dg.PartitionsDefinition | None) -> list[Any]:  # define_asset_job gives an unresolved job (not exported by name)
    if partitions_def is None:
        return []
    return [dg.define_asset_job(
        name=CROSS_OFFICE_AUDIT_JOB,
        selection=dg.AssetSelection.assets(CROSS_OFFICE_AUDIT_KEY),
        executor_def=dg.in_process_executor,
        description=(
            "The org-level cross-office patient audit, once for every office: after the offices' staging "
            "(stage_and_audit per partition), before their loads under the policy merge."
        ),
    )]
