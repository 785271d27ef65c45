"""hookd's databases: the connection layer, the schema, and the delivery history written and read."""
