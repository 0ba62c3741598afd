"""revoke-employee-access: revoke a MongoDB employee's access grant on a cluster."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.actions import ActionSpec, Argument, ExecutionContext, TargetOption, TargetSource
from bot.atlas import AtlasClient
from bot.preview import Fact, Preview
from commands._fields import CLUSTER_NAME, OBJECT_ID, Args, ClusterName, ObjectId
from commands._reads import cluster_targets, dump


class RevokeEmployeeAccessArgs(Args):
    group_id: ObjectId
    cluster_name: ClusterName


async def _execute(ctx: ExecutionContext, args: RevokeEmployeeAccessArgs) -> None:
    await ctx.atlas.revoke_mongodb_employee_access(group_id=args.group_id, cluster_name=args.cluster_name)


async def _preview(ctx: ExecutionContext, args: RevokeEmployeeAccessArgs) -> Preview:
    cluster = await ctx.atlas.get_cluster(args.group_id, args.cluster_name)
    project = await ctx.atlas.get_project(args.group_id)
    grant = cluster.mongo_db_employee_access_grant
    blockers = []
    if grant is None:
        # The spec does not say what an absent grant means; no grant is the only reading that fits.
        blockers.append("This cluster has no MongoDB employee access grant: there is nothing to revoke.")
    elif grant.expiration_time <= datetime.now(UTC):
        blockers.append(f"The grant already expired at {grant.expiration_time:%Y-%m-%d %H:%M} UTC.")
    return Preview(
        facts=(
            Fact(label="Project", value=f"{project.name} ({project.id})"),
            Fact(label="Cluster", value=f"{cluster.name}, {cluster.state_name or 'state unknown'}"),
            Fact(
                label="Employee access grant",
                value=f"{grant.grant_type}, expires {grant.expiration_time:%Y-%m-%d %H:%M} UTC" if grant else "none",
            ),
        ),
        blockers=tuple(blockers),
        evidence={"cluster": dump(cluster), "project": dump(project)},
    )


async def _verify(atlas: AtlasClient, args: RevokeEmployeeAccessArgs) -> bool:
    cluster = await atlas.get_cluster(args.group_id, args.cluster_name)
    return cluster.mongo_db_employee_access_grant is None


async def _targets(source: TargetSource) -> list[TargetOption]:
    return await cluster_targets(source.atlas)


ACTION = ActionSpec(
    name="revoke-employee-access",
    title="Revoke employee access",
    arguments=(
        Argument(field="group_id", label="groupId", pattern=OBJECT_ID),
        Argument(field="cluster_name", label="clusterName", pattern=CLUSTER_NAME),
    ),
    args_model=RevokeEmployeeAccessArgs,
    describe=lambda a: (
        f"Revoke the MongoDB employee access grant on cluster `{a.cluster_name}` in project `{a.group_id}`."
    ),
    impact=(
        "MongoDB support staff immediately lose the access previously granted to this cluster "
        "(database logs, infrastructure, or App Services sync data). Any support case relying on it "
        "stalls until access is granted again."
    ),
    confirm_field="cluster_name",
    execute=_execute,
    atlas_role="Project Support Access Manager",
    target_label=lambda a: f"cluster {a.cluster_name} (project {a.group_id})",
    preview=_preview,
    verify=_verify,
    verified_state="the cluster has no employee access grant",
    targets=_targets,
    target_noun="cluster",
)
