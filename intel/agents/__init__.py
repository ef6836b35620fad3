"""Intelligence agents: one module each, one `async analyze(snapshot) -> AgentReport`."""
