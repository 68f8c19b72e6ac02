"""The search: design space, offload/residency optimisation, ranked plans, Pareto front."""
