"""What workflow files import: ``api.workflow_engine`` (the handler's ``ctx`` and its types)
and ``api.webhooks`` (the ``WEBHOOKS`` a file exports).

A workflow file is a Python module with ``WORKFLOW_NAME`` and ``async def handler(inp, ctx)``;
the Centaur worker (``centaur_worker``) loads it and runs the handler durably. See the product
page "Creating Workflows" and ``python/README.md``.
"""
