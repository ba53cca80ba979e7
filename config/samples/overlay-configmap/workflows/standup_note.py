"""Formats a team's stand-up note from its items.

An organisation's own workflow, shipped in a ConfigMap (see ../kustomization.yaml).
"""

from dataclasses import dataclass, field

from api.workflow_engine import WorkflowContext

WORKFLOW_NAME = "standup_note"

EXAMPLE_INPUT = {"team": "platform", "items": ["review the chart", "rotate the webhook secret"]}


@dataclass
class Input:
    team: str
    items: list[str] = field(default_factory=list)


async def handler(inp: Input, ctx: WorkflowContext) -> dict:
    note = await ctx.step("format", lambda: "\n".join(f"* {item}" for item in inp.items))
    return {"team": inp.team, "note": note}
