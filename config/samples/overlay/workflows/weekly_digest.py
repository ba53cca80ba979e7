"""Asks the default agent for a digest of the week's notes and returns it.

An organisation's own workflow, shipped in an overlay (see ../kustomization.yaml).
"""

from dataclasses import dataclass, field

from api.workflow_engine import WorkflowContext

from _text import bullet_list

WORKFLOW_NAME = "weekly_digest"

EXAMPLE_INPUT = {"team": "platform", "notes": ["shipped schedules", "on-call was quiet"]}


@dataclass
class Input:
    team: str
    notes: list[str] = field(default_factory=list)


async def handler(inp: Input, ctx: WorkflowContext) -> dict:
    notes = await ctx.step("collect", lambda: sorted(inp.notes))
    digest = await ctx.run_agent(
        "digest",
        text=f"Write a short weekly digest for team {inp.team} from these notes:\n{bullet_list(notes)}",
    )
    return {"team": inp.team, "digest": digest}
