"""One module per rule primitive; each class is built as `Cls(pack, rule, ctx)`."""
