from typing import Any

from api.workflow_engine import WorkflowContext


WORKFLOW_NAME = "py_parent"


async def handler(inp: dict[str, Any], ctx: WorkflowContext) -> dict[str, Any]:
    n = await ctx.step("count", lambda: len(inp["items"]))
    doubled = await ctx.run_workflow("double", "py_double", {"n": n})
    paid = await ctx.wait_for_event("paid", "order.paid", inp["order"])
    return {"n": n, "doubled": doubled["n"], "amount": paid["amount"]}
