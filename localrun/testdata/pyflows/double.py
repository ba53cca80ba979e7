from typing import Any

from api.workflow_engine import WorkflowContext


WORKFLOW_NAME = "py_double"


async def handler(inp: dict[str, Any], ctx: WorkflowContext) -> dict[str, Any]:
    await ctx.sleep("rest", "2h")
    return await ctx.step("double", lambda: {"n": inp["n"] * 2})
