"""From parsed statements to checked plans: OPTIONS grammars and the planner."""
