"""The pure core: samples and a clock value in, line states and incidents out (no I/O).

`rules.config.RulesConfig` is the checked `rules:` section (monitord/config/rules.py reads it);
`rules.engine.Engine` holds the state and lists its parts, each of which explains its share of the
model in its docstring;
`rules.checks` and `rules.verdict` are the rule kinds and the status tables.
"""
