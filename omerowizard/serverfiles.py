def plan_files(plan): pass
