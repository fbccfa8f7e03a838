"""Showback: what each team's quota costs, as its share of the nodes that hold it.

A quota is a promise of capacity (the `quota-capacity` check holds the promises to what the node
groups hold at their maxSize), so a team is shown what its promise costs, whether or not its pods
use it yet. The method, one rule for every view (review, `budget`, the pull-request comment):

- the *fleet* is every node group at its maxSize: its allocatable CPU and memory (what the
  kubelet leaves for pods, `platform_facts.capacity.node_shape`) and its monthly cost at the
  ceiling (the node groups' instance, root-volume and CPU-credit lines of the cost model, at list
  price; spot at the model's spot fraction; off-hours where the stack sleeps); traffic lines are
  not node cost and are left out;
- a team's share is its *dominant share*: the larger of its quota's CPU requests over the fleet's
  allocatable CPU and its memory requests over the fleet's allocatable memory (summed over the
  team's namespaces), because a node that holds the one cannot sell the other;
- its monthly cost is that share of the fleet's cost.

Shares need not add up to one: what the platform requests and what no quota promises are the
platform's cost, and dominant shares of different resources overlap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from platform_facts.capacity import NodeGroup, Quota, quotas_by_team

CENT = Decimal("0.01")


@dataclass(frozen=True)
class TeamCost:
    team: str
    namespaces: tuple[str, ...]
    cpu_m: float
    memory_mib: float
    cpu_share: Decimal  # of the fleet's allocatable CPU
    memory_share: Decimal
    monthly_usd: Decimal

    @property
    def dominant(self) -> str:
        return "CPU" if self.cpu_share >= self.memory_share else "memory"

    @property
    def share(self) -> Decimal:
        return max(self.cpu_share, self.memory_share)


@dataclass(frozen=True)
class Showback:
    nodes: int  # the fleet at maxSize
    cpu_m: float  # allocatable
    memory_mib: float
    monthly_usd: Decimal  # the fleet's node cost at the ceiling
    teams: tuple[TeamCost, ...]

    @property
    def teams_monthly_usd(self) -> Decimal:
        return sum((t.monthly_usd for t in self.teams), Decimal(0))


def showback(groups: Sequence[NodeGroup], node_costs: Mapping[str, Decimal],
             quotas: Sequence[Quota], prefix_delegation: bool) -> Showback | None:
    """`node_costs`: per node group resource (NodeGroup.resource), its node lines at the ceiling.
    None when the plan has no node groups or no team quotas."""
    if not groups or not quotas:
        return None
    nodes = cpu = memory = 0.0
    for group in groups:
        count = group.max_size if group.max_size is not None else group.min_size
        shape = group.shape(prefix_delegation)
        nodes += count
        cpu += count * shape.cpu_m
        memory += count * shape.memory_mib
    fleet = sum((node_costs.get(g.resource, Decimal(0)) for g in groups), Decimal(0))
    by_team = quotas_by_team(quotas)
    teams = []
    for team, own in sorted(by_team.items()):
        team_cpu = sum(q.cpu_m for q in own)
        team_memory = sum(q.memory_mib for q in own)
        cpu_share = Decimal(str(team_cpu)) / Decimal(str(cpu)) if cpu else Decimal(0)
        memory_share = Decimal(str(team_memory)) / Decimal(str(memory)) if memory else Decimal(0)
        cost = (fleet * max(cpu_share, memory_share)).quantize(CENT, ROUND_HALF_UP)
        teams.append(TeamCost(team, tuple(q.namespace for q in own), team_cpu, team_memory,
                              cpu_share, memory_share, cost))
    return Showback(int(nodes), cpu, memory, fleet.quantize(CENT, ROUND_HALF_UP), tuple(teams))
