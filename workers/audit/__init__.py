"""The consistency checker: audit an edited or unlearned model against the graph.

`kg` derives the probes, `editor` scores them; this package runs the audit
(`workers.audit.run`), aggregates and gates it (`stats`, `report`), and renders it as
JSON (`schema`), HTML (`html`) and a terminal table (`summary`).
"""
