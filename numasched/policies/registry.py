"""A registry of policies keyed by name, like kube-scheduler's plugin registry.

Registering a name twice is refused; looking up an unknown name fails with the known names.
"""
from __future__ import annotations

from .base import Policy


class Registry:
    def __init__(self):
        self._policies: dict[str, Policy] = {}

    def register(self, policy: Policy) -> Policy:
        if not isinstance(policy, Policy):
            raise ValueError(f"only numasched.policies.Policy objects can be registered, got {type(policy).__name__}")
        if policy.name in self._policies:
            raise ValueError(f"a policy named {policy.name!r} is already registered")
        self._policies[policy.name] = policy
        return policy

    def get(self, name) -> Policy:
        if isinstance(name, Policy):
            return name
        if isinstance(name, str) and name in self._policies:
            return self._policies[name]
        known = ", ".join(repr(n) for n in self._policies)
        raise ValueError(f"unknown policy {name!r}; known: {known}")

    def names(self) -> list[str]:
        return list(self._policies)

    def __contains__(self, name) -> bool:
        return name in self._policies

    def __iter__(self):
        return iter(self._policies.values())
