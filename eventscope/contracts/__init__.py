"""Consumer contract tests: a consumer's contract checked against schemas, examples, traffic."""
