"""The small runtime: operator schemas and registry, operator instances, nets, gradients, scopes.

Operators register themselves here; the runtime never imports an operator family, and operator
families never import the workspace.
"""
