"""Reading a config: TOML with key positions, --set overrides, validation, cross-key rules, shipped configs."""
